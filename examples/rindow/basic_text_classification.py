"""Rindow's samples/basic-text-classification.php, line by line in Python: sentiment of the IMDB
movie reviews (aclImdb) with an Embedding, a GlobalAveragePooling1D and a sigmoid unit.

    python examples/rindow/basic_text_classification.py [--small] [--no-plot]

The reviews are read from $TAPEGRAD_DATASETS/aclImdb (default ~/.tapegrad/datasets/aclImdb):
the extracted tree (aclImdb/train/pos/*.txt, ...), else the archive aclImdb_v1.tar.gz there,
which is downloaded when missing (Rindow's RINDOW_NEURALNETWORKS_DATASETS plays that role).
The tokenized data are cached in aclImdb.npz and the model saved to
basic-text-classification.model, both in the current directory (Rindow: beside the script;
its cache is a PHP serialization, ours a NumPy .npz without pickles). ``--small`` (for the
tests) keeps a 300-word vocabulary and trains with batches of 16.
"""

import os
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

import tapegrad

nn = tapegrad.NeuralNetworks()
small = "--small" in sys.argv
plot = "--no-plot" not in sys.argv
if small:
    tapegrad.set_seed(0)  # reproducible runs in the tests

data_dir = os.environ.get("TAPEGRAD_DATASETS")
if not data_dir:
    data_dir = str(Path.home() / ".tapegrad" / "datasets")
datasetdir = Path(data_dir) / "aclImdb"
tarfile_path = datasetdir / "aclImdb_v1.tar.gz"
url = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
savefilename = Path("aclImdb.npz")
num_words = 300 if small else 10000
if not savefilename.exists():
    if not (datasetdir / "README").exists():  # (Rindow downloads the archive even when it is extracted)
        datasetdir.mkdir(parents=True, exist_ok=True)
        if not tarfile_path.exists():
            print("Loading....", end="", flush=True)
            try:
                urllib.request.urlretrieve(url, tarfile_path)
            except OSError as exc:
                tarfile_path.unlink(missing_ok=True)
                sys.exit(f"cannot download {url} ({exc}): put aclImdb_v1.tar.gz in {datasetdir}, or its extracted "
                         f"folders there (train/pos/*.txt, train/neg, test/pos, test/neg and README)")
            print(" Done.")
        print("Extract....", end="", flush=True)
        with tarfile.open(tarfile_path) as archive:
            archive.extractall(datasetdir.parent, filter="data")
        print(" Done.")
    classnames = ["neg", "pos"]
    dataset = nn.data.TextClassifiedDataset(
        datasetdir / "train",
        pattern="@[0-9_]*\\.txt@", maxlen=256, num_words=num_words,
        classnames=classnames, restricted_by_class=classnames,
        shuffle=True, verbose=1)
    train_inputs, train_labels = dataset.load_data()
    classnames = dataset.classnames()
    tokenizer = dataset.get_tokenizer()
    dataset = nn.data.TextClassifiedDataset(
        datasetdir / "test",
        pattern="@[0-9_]*\\.txt@", tokenizer=tokenizer, maxlen=256, num_words=num_words,
        classnames=classnames, restricted_by_class=classnames,
        shuffle=True, verbose=1)
    test_inputs, test_labels = dataset.load_data()
    train_labels = train_labels.astype(np.float32)
    test_labels = test_labels.astype(np.float32)
    np.savez(
        savefilename,
        tokenizer=np.array(tokenizer.save()),
        classnames=np.array(classnames),
        train_inputs=train_inputs,
        train_labels=train_labels,
        test_inputs=test_inputs,
        test_labels=test_labels,
    )
else:
    with np.load(savefilename, allow_pickle=False) as saved:
        tokenizer_data = str(saved["tokenizer"])
        classnames = saved["classnames"].tolist()
        train_inputs, train_labels = saved["train_inputs"], saved["train_labels"]
        test_inputs, test_labels = saved["test_inputs"], saved["test_labels"]
    tokenizer = nn.data.TextClassifiedDataset(datasetdir / "train").get_tokenizer()
    tokenizer.load(tokenizer_data)

print(",".join(map(str, train_inputs.shape)))
print(",".join(map(str, train_labels.shape)))
print(",".join(map(str, test_inputs.shape)))
print(",".join(map(str, test_labels.shape)))
total_size = len(train_inputs)
train_size = int(np.floor(total_size * 0.9))
val_inputs = train_inputs[train_size:total_size]
val_labels = train_labels[train_size:total_size]
train_inputs = train_inputs[0:train_size]
train_labels = train_labels[0:train_size]

print("device type: " + nn.device_type())
model_file_path = Path("basic-text-classification.model")

history = None
if model_file_path.exists():
    print("loading model ...")
    model = nn.models().load_model(model_file_path)
    model.summary()
else:
    inputlen = train_inputs.shape[1]
    print("creating model ...")
    model = nn.models().Sequential([
        nn.layers().Embedding(
            len(tokenizer.get_words()),  # input_dim
            16,  # output_dim
            input_length=inputlen),
        nn.layers().GlobalAveragePooling1D(),
        nn.layers().Dense(1, activation="sigmoid"),
    ])

    model.compile(
        loss=nn.losses.BinaryCrossEntropy(),
        optimizer="adam",
    )
    model.summary()
    print("training model ...")
    history = model.fit(train_inputs, train_labels,
                        epochs=10, batch_size=16 if small else 64,
                        validation_data=[val_inputs, val_labels],
                        verbose=2,
                        )
    model.save(model_file_path)
    if plot:
        try:
            import matplotlib
            import matplotlib.pyplot as plt
        except ImportError:
            print("(matplotlib is not installed: no plots)")
        else:
            for name in ("accuracy", "val_accuracy", "loss", "val_loss"):
                plt.plot(np.array(history[name]), label=name)
            plt.legend()
            plt.title("imdb")
            plt.savefig("basic-text-classification.png")
            if matplotlib.get_backend().lower() != "agg":
                plt.show()
loss, accuracy = model.evaluate(test_inputs, test_labels,
                                batch_size=64, verbose=2,
                                )
print(f"test accuracy={accuracy:.4f}")
