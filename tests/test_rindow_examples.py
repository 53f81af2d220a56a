"""The ports of Rindow's sample programs (examples/rindow/) run at their small size on data written in
the real file formats (MNIST IDX, CIFAR-10 binary batches, an aclImdb tree) into $TAPEGRAD_DATASETS,
read by tapegrad's own loaders, and learn: accuracy above chance by a stated margin. A second run
finds the saved model (or weights) and loads it instead of training."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rindow_fixtures import class_stripes, write_cifar10, write_imdb, write_mnist

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "rindow"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    write_mnist(root / "mnist")
    write_mnist(root / "fashion_mnist", seed=1)
    write_cifar10(root / "cifar10")
    write_imdb(root)
    return root


@pytest.fixture(scope="module")
def stripe_datasets(tmp_path_factory):
    """For the convolutional samples: classes of stripe textures, which their global pooling and
    the flips and shifts of ImageDataGenerator keep (the prototypes of ``datasets`` they do not)."""
    root = tmp_path_factory.mktemp("stripe_datasets")
    write_mnist(root / "mnist", images=class_stripes)
    write_cifar10(root / "cifar10", images=class_stripes)
    return root


def run(script: str, args: list[str], cwd: Path, datasets: Path) -> str:
    # PYTHONPATH: this checkout's tapegrad; one BLAS thread: the same numbers everywhere
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT), TAPEGRAD_DATASETS=str(datasets),
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    return result.stdout


def value(out: str, name: str) -> float:
    return float(re.findall(rf"{name}=([\d.]+)", out)[-1])


@pytest.mark.parametrize("dataset, saved", [("mnist", True), ("fashion", False), ("cifar10", False)])
def test_basic_image_classification_learns(dataset, saved, datasets, tmp_path):
    out = run("basic_image_classification.py", [dataset, "--small", "--no-plot"], tmp_path, datasets)
    assert f"dataset={dataset}" in out and "device type: CPU" in out
    assert value(out, "val_accuracy") >= 0.5  # 10 classes: chance is 0.1
    predicted = re.search(r"predicted classes: (.*)", out).group(1).split()
    assert len(predicted) == 4  # the last validation batch: 100 images in batches of 32
    if saved:  # the second run loads the saved model
        again = run("basic_image_classification.py", [dataset, "--small", "--no-plot"], tmp_path, datasets)
        assert "loading model ..." in again and "training model" not in again
        predicted = re.search(r"predicted classes: (.*)", again).group(1).split()
        true = re.search(r"true classes: (.*)", again).group(1).split()
        assert sum(p == t for p, t in zip(predicted, true)) >= 3  # the trained weights were loaded


def test_basic_image_classification_custom_learns_and_reloads_its_weights(datasets, tmp_path):
    out = run("basic_image_classification_custom.py", ["--small"], tmp_path, datasets)
    assert value(out, "val_accuracy") >= 0.5 and value(out, "test accuracy") >= 0.5  # chance: 0.1
    for png in ("history", "predicts"):
        assert (tmp_path / f"basic-image-classification-custom-mnist-{png}.png").stat().st_size > 0
    again = run("basic_image_classification_custom.py", ["--small", "--no-plot"], tmp_path, datasets)
    assert "loading model ..." in again
    assert value(again, "test accuracy") == value(out, "test accuracy")


def test_basic_text_classification_learns(datasets, tmp_path):
    out = run("basic_text_classification.py", ["--small", "--no-plot"], tmp_path, datasets)
    assert "300,256" in out and "100,256" in out  # 300 training and 100 test reviews, 256 tokens each
    assert value(out, "test accuracy") >= 0.75  # two classes: chance is 0.5
    again = run("basic_text_classification.py", ["--small", "--no-plot"], tmp_path, datasets)
    assert "loading model ..." in again  # and the tokenized data from aclImdb.npz
    assert value(again, "test accuracy") == value(out, "test accuracy")


def check_predictions(out: str, count: int, least_right: int) -> None:
    predicted = re.search(r"predicted classes: (.*)", out).group(1).split()
    true = re.search(r"true classes: (.*)", out).group(1).split()
    assert len(predicted) == len(true) == count  # the first images of the last validation batch
    assert sum(p == t for p, t in zip(predicted, true)) >= least_right


@pytest.mark.parametrize("dataset, saved", [("mnist", True), ("cifar10", False)])
def test_cnn_image_classification_learns(dataset, saved, stripe_datasets, tmp_path):
    script = "cnn_image_classification.py"
    out = run(script, [dataset, "--small", "--no-plot"], tmp_path, stripe_datasets)
    assert f"dataset={dataset}" in out and "training model ..." in out
    # Conv2D 32, 64, 128 (3x3), Dense 128 and 10, as in Keras and Rindow
    assert ("Total params: 110,474" if dataset == "mnist" else "Total params: 111,050") in out
    assert value(out, "val_accuracy") >= 0.6  # 10 classes: chance is 0.1
    check_predictions(out, 4, 3)  # 100 test images in batches of 32
    if saved:  # the second run loads the saved model and plots
        again = run(script, [dataset, "--small"], tmp_path, stripe_datasets)
        assert "loading model ..." in again and "training model" not in again
        check_predictions(again, 4, 3)
        assert (tmp_path / f"cnn-image-classification-{dataset}-predicts.png").stat().st_size > 0


@pytest.mark.parametrize("dataset, saved", [("cifar10", True), ("mnist", False)])
def test_image_classification_with_cnn_learns_through_augmented_batches(dataset, saved, stripe_datasets, tmp_path):
    # cifar10: a SequentialDataset of the batch files wrapped by ImageDataGenerator; mnist: ImageDataGenerator
    # of arrays. Four epochs of 75 steps (batches of 4) let BatchNormalization's moving statistics settle.
    script = "image_classification_with_cnn.py"
    args = [dataset, "4", "--small"]
    out = run(script, args if saved else [*args, "--no-plot"], tmp_path, stripe_datasets)
    assert f"dataset={dataset}" in out and "Epoch 4/4" in out
    assert "Non-trainable params: 1,408" in out  # the moving means and variances of 64 + 128 + 512 channels
    assert value(out, "val_accuracy") >= 0.6  # 10 classes: chance is 0.1
    check_predictions(out, 4, 3)  # 100 test images in batches of 4
    if saved:
        for png in ("history", "predicts"):
            assert (tmp_path / f"image-classification-with-cnn-{dataset}-{png}.png").stat().st_size > 0
        again = run(script, [dataset, "--small", "--no-plot"], tmp_path, stripe_datasets)
        assert "loading model ..." in again and "training model" not in again
        check_predictions(again, 4, 3)  # the trained weights and moving statistics were loaded
