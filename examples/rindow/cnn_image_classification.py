"""Rindow's samples/cnn-image-classification.php, line by line in Python: a small convolutional
network (Conv2D, MaxPooling2D, GlobalMaxPooling2D, Dense) classifies MNIST, Fashion-MNIST or
CIFAR-10 images.

    python examples/rindow/cnn_image_classification.py [mnist|fashion|cifar10] [epochs] [shrink]
                                                       [--small] [--no-plot]

The datasets are read from $TAPEGRAD_DATASETS (see tapegrad.nn.datasets). ``shrink`` keeps
2,000 training and 200 test images, as in Rindow (which also shrinks whenever its math library
is not the accelerated one); ``--small`` keeps 300 and 100 with batches of 32, for the tests.
The model is saved to (and, when the file exists, loaded from)
cnn-image-classification-<dataset>.model in the current directory (Rindow: beside the script).
The plots are saved as PNG files there and shown when a display is available. Where Rindow
plots the predictions only, the port also prints the predicted and true classes and the final
accuracies.
"""

import sys
from pathlib import Path

import numpy as np

import tapegrad
from tapegrad.nn.data import DatasetFilter

nn = tapegrad.NeuralNetworks()
args = [a for a in sys.argv[1:] if not a.startswith("--")]
small = "--small" in sys.argv
plot = "--no-plot" not in sys.argv
if small:
    tapegrad.set_seed(0)  # reproducible runs in the tests

dsname = "mnist"
epochs = 5
batch_size = 256
shrink = False

if len(args) > 0 and args[0]:
    dsname = args[0]
if len(args) > 1 and args[1]:
    epochs = int(args[1])
if len(args) > 2 and args[2]:
    shrink = True
if small:
    batch_size = 32

print(f"dataset={dsname}")
if dsname == "mnist":
    (train_img, train_label), (test_img, test_label) = nn.datasets().mnist().load_data()
    input_shape = [28, 28, 1]
    class_names = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
elif dsname == "fashion":
    (train_img, train_label), (test_img, test_label) = nn.datasets().fashion_mnist().load_data()
    input_shape = [28, 28, 1]
    class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
elif dsname == "cifar10":
    train_data, test_data = nn.datasets().cifar10().load_data()
    input_shape = [32, 32, 3]
    class_names = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
else:
    print(f"Unknown dataset {dsname}")
    sys.exit(1)


class InputsFilter(DatasetFilter):
    def __init__(self, input_shape):
        self.input_shape = input_shape

    def translate(self, img, label=None, options=None):
        data_size = img.shape[0]
        shape = [data_size, *self.input_shape]
        img = img.reshape(shape)
        return (
            np.float32(1.0 / 255.0) * img.astype(np.float32),
            label.astype(np.int32),
        )


inputs_filter = InputsFilter(input_shape)

if dsname in ("mnist", "fashion"):
    if shrink or small:
        # Shrink data
        train_size = 300 if small else 2000
        test_size = 100 if small else 200
        print("Shrink data ...")
        train_img = train_img[0:train_size]
        train_label = train_label[0:train_size]
        test_img = test_img[0:test_size]
        test_label = test_label[0:test_size]
        print("Shrink train=[" + ",".join(map(str, train_img.shape)) + "]")
        print("Shrink test=[" + ",".join(map(str, test_img.shape)) + "]")

    print("formating train images and labels ...")
    train_img, train_label = inputs_filter.translate(train_img, train_label)
    test_img, test_label = inputs_filter.translate(test_img, test_label)

    print(f"train=[{train_img.shape},{train_label.shape}]")
    print(f"val=[{test_img.shape},{test_label.shape}]")
    dataset = nn.data.NDArrayDataset(
        train_img,
        tests=train_label,
        batch_size=batch_size,
    )
    val_dataset = nn.data.NDArrayDataset(
        test_img,
        tests=test_label,
        batch_size=batch_size,
    )
else:  # cifar10
    train_size = 50000
    test_size = 10000
    if shrink or small:
        # Shrink data
        train_size = 300 if small else 2000
        test_size = 100 if small else 200
        print("Shrink data ...")
        print(f"Shrink train={train_size}")
        print(f"Shrink test={test_size}")
    print(f"train_size={train_size}")
    print(f"val_size={test_size}")
    print("formating train images and labels ...")
    dataset = nn.data.SequentialDataset(
        train_data,
        batch_size=batch_size,
        inputs_filter=inputs_filter,
        total_size=train_size,
    )
    val_dataset = nn.data.SequentialDataset(
        test_data,
        batch_size=batch_size,
        inputs_filter=inputs_filter,
        total_size=test_size,
    )

print("device type: " + nn.device_type())
model_file_path = Path(f"cnn-image-classification-{dsname}.model")

history = None
if model_file_path.exists():
    print("loading model ...")
    model = nn.models().load_model(model_file_path)
    model.summary()
else:
    print("creating model ...")
    model = nn.models().Sequential([
        nn.layers().Conv2D(
            32,  # filters
            3,  # kernel_size
            input_shape=input_shape,
            kernel_initializer="he_normal",),
        nn.layers().MaxPooling2D(),
        nn.layers().Conv2D(
            64,
            3,
            kernel_initializer="he_normal",),
        nn.layers().MaxPooling2D(),
        nn.layers().Conv2D(
            128,
            3,
            kernel_initializer="he_normal",),
        nn.layers().GlobalMaxPooling2D(),
        nn.layers().Dense(
            128,  # units
            kernel_initializer="he_normal",
            activation="relu",
        ),
        nn.layers().Dense(10),  # activation="softmax"
    ])

    model.compile(
        loss=nn.losses().SparseCategoricalCrossentropy(from_logits=True),
        optimizer="adam",
    )
    model.summary()
    print("training model ...")
    history = model.fit(
        dataset,
        epochs=epochs,
        validation_data=val_dataset,
        verbose=2,
    )
    model.save(model_file_path, portable=True)

for img, lbl in val_dataset:
    images = img
    labels = lbl
images = images[0:8]
labels = labels[0:8]
predicts = model.predict(images)
# for from_logits
K = nn.backend()
predicts = K.ndarray(nn.backend.softmax(K.array(predicts)))

if history is not None:
    print(f"final: accuracy={history['accuracy'][-1]:.4f} val_accuracy={history['val_accuracy'][-1]:.4f}")
print("predicted classes: " + " ".join(str(class_names[i]) for i in K.argmax(predicts, axis=-1)))
print("true classes:      " + " ".join(str(class_names[i]) for i in labels))

if plot:
    try:
        import matplotlib
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plots)")
        sys.exit(0)
    if history is not None:
        plt.figure()
        for name in ("accuracy", "val_accuracy", "loss", "val_loss"):
            plt.plot(np.array(history[name]), label=name)
        plt.legend()
        plt.title(dsname)
        plt.savefig(f"cnn-image-classification-{dsname}-history.png")

    if input_shape[2] == 1:
        input_shape.pop()
    fig, axes = plt.subplots(4, 4)
    axes = axes.ravel()
    for i, predict in enumerate(predicts):
        axes[i * 2].imshow(images[i].reshape(input_shape), origin="upper")
        axes[i * 2].set_axis_off()
        label = labels[i]
        axes[i * 2].set_title(f"{class_names[label]}({label})")
        axes[i * 2 + 1].bar(np.arange(10), predict)
    plt.savefig(f"cnn-image-classification-{dsname}-predicts.png")
    if matplotlib.get_backend().lower() != "agg":
        plt.show()
