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
from rindow_fixtures import write_cifar10, write_imdb, write_mnist

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
