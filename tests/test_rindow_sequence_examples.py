"""The ports of Rindow's sequence sample programs (examples/rindow/: learn-add-numbers-with-rnn,
neural-machine-translation-with-attention and -with-transformer) run at their small size and learn:
accuracy above chance by a stated margin, and greedy decoding (one token at a time, shape
inspection off) translates. The translation samples read a tab-separated sentence-pair file
written into $TAPEGRAD_DATASETS/fra-eng/fra.txt. A second run loads the saved model or weights.
Also the library changes the ports needed: AbstractModel.backend, g.get inside a compiled
Function, and custom losses and metrics that reduce a masked batch themselves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rindow_fixtures import write_sentence_pairs

import tapegrad

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "rindow"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    write_sentence_pairs(root / "fra-eng" / "fra.txt", count=400)
    return root


def run(script: str, args: list[str], cwd: Path, datasets: Path) -> str:
    # PYTHONPATH: this checkout's tapegrad; one BLAS thread: the same numbers everywhere
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT), TAPEGRAD_DATASETS=str(datasets),
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return result.stdout


def value(out: str, name: str) -> float:
    return float(re.findall(rf"\b{name}=([\d.]+)", out)[-1])


def exact(out: str) -> int:
    return int(re.findall(r"exact=(\d+)/10", out)[-1])


def test_learn_add_numbers_with_rnn_learns_and_reloads(datasets, tmp_path):
    out = run("learn_add_numbers_with_rnn.py", ["--small", "--no-plot"], tmp_path, datasets)
    assert "Total questions: 3000" in out and "train,test: 2700,300" in out
    samples = re.findall(r"^(\d+)\+(\d+) *=([\d ]{3}) : ([* ]) ([\d ]{3})$", out, re.M)
    assert len(samples) == 10  # the PHP's ten sample answers: question=predicted : mark answer
    for a, b, predicted, mark, answer in samples:
        assert int(answer) == int(a) + int(b) and (mark == "*") == (predicted == answer)
    assert value(out, "val_accuracy") >= 0.55  # per character, 12 characters: chance is 1/12
    again = run("learn_add_numbers_with_rnn.py", ["--small", "--no-plot"], tmp_path, datasets)
    assert "loading model ..." in again and "Train model" not in again  # and the cached questions
    assert value(again, "val_accuracy") == value(out, "val_accuracy")


def test_neural_machine_translation_with_attention_learns_and_decodes(datasets, tmp_path):
    out = run("neural_machine_translation_with_attention.py", ["--small"], tmp_path, datasets)
    assert "Total questions: 400" in out and "Input length: 7" in out
    assert len(re.findall(r"^Predict: .*<end>$", out, re.M)) >= 8  # greedy decoding stops at <end>
    assert value(out, "val_accuracy") >= 0.85  # masked word accuracy; 17 words: chance is ~0.06
    assert exact(out) >= 5
    for k in range(10):  # the attention plots
        assert (tmp_path / f"neural-machine-translation-with-attention-{k}.png").stat().st_size > 0
    again = run("neural_machine_translation_with_attention.py", ["--small", "--no-plot"], tmp_path, datasets)
    assert "Loading model..." in again and "Train model" not in again
    assert value(again, "val_accuracy") == value(out, "val_accuracy") and exact(again) == exact(out)


def test_neural_machine_translation_with_transformer_learns_and_decodes(datasets, tmp_path):
    out = run("neural_machine_translation_with_transformer.py", ["--small"], tmp_path, datasets)
    assert "Total questions: 400" in out and "num_layers: 1" in out
    predicted = re.findall(r"^Predict: (.*)$", out, re.M)
    targets = re.findall(r"^Target:  (.*)$", out, re.M)
    assert len(predicted) == len(targets) == 10
    assert all(p.startswith("<start> ") and p.endswith(" <end>") for p in predicted)
    assert value(out, "val_accuracy") >= 0.9  # masked word accuracy; chance is ~0.06
    assert exact(out) >= 8 and exact(out) == sum(p == t for p, t in zip(predicted, targets))
    for k in range(10):  # the cross-attention plots, one panel per head
        assert (tmp_path / f"neural-machine-translation-with-transformer-{k}.png").stat().st_size > 0
    again = run("neural_machine_translation_with_transformer.py", ["--small", "--no-plot"], tmp_path, datasets)
    assert "Loading model..." in again and "Train model" not in again
    assert value(again, "val_accuracy") == value(out, "val_accuracy") and exact(again) == exact(out)


# -- the library changes the ports needed -------------------------------------------------------
def test_abstract_model_backend_is_the_builders_and_can_be_assigned():
    nn = tapegrad.NeuralNetworks()

    class Shift(tapegrad.AbstractModel):
        def call(self, inputs):
            K = self.backend  # Rindow's $this->backend
            return K.concat([K.slice(inputs, [0, 1], [-1, -1]), K.zeros([inputs.shape[0], 1], inputs.dtype)], 1)

    model = Shift(nn)
    assert model.backend is nn.backend()
    np.testing.assert_array_equal(model(np.array([[1, 2, 3]], np.int32)), [[2, 3, 0]])
    model.backend = "mine"
    assert model.backend == "mine"


def test_g_get_of_a_shape_sizes_a_slice_inside_a_compiled_function():
    nn = tapegrad.NeuralNetworks()
    g = nn.gradient()
    table = g.Variable(np.arange(12.0).reshape(6, 2), trainable=False)

    @g.Function
    def head(x):
        length = g.get(g.shape(x), 1)  # the length of x's second axis
        return g.add(x, g.get(table, 0, length))

    x = np.ones((2, 3, 2))
    np.testing.assert_allclose(head(x).value(), 1.0 + np.arange(6.0).reshape(1, 3, 2).repeat(2, axis=0))
    np.testing.assert_allclose(head(np.zeros((1, 4, 2))).value(), np.arange(8.0).reshape(1, 4, 2))
    weights = g.Variable(np.arange(5.0))
    with g.GradientTape() as tape:  # a float Variable is still sliced by the op: gradients reach it
        y = g.reduce_sum(g.get(weights, 1, 2))
    np.testing.assert_array_equal(tape.gradient(y, weights).value(), [0, 1, 1, 0, 0])


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("custom_loss", [True, False])
def test_a_custom_loss_and_metric_that_reduce_a_masked_batch_themselves(jit, custom_loss):
    nn = tapegrad.NeuralNetworks()
    g, K = nn.gradient(), nn.backend()
    tapegrad.set_seed(1)
    model = nn.models.Sequential([nn.layers.Embedding(5, 4, mask_zero=True), nn.layers.Dense(5)])
    per_token = nn.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    def loss(label, pred):  # Rindow's custom loss: masked by hand, one number for the batch
        mask = g.cast(g.cast(label, dtype=np.bool_), dtype=np.float32)
        return g.div(g.reduce_sum(g.mul(per_token(label, pred), mask)), g.reduce_sum(mask))

    def accuracy(label, pred):  # and accuracy: a Python number for the batch
        mask = K.cast(label, dtype=np.bool_)
        match = K.masking(mask, K.cast(K.equal(label, K.argmax(pred, axis=-1)), dtype=np.float32))
        return K.scalar(K.sum(match)) / K.scalar(K.sum(mask))

    if not custom_loss:  # the built-in loss skips the masked positions itself
        loss = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(loss=loss, optimizer="adam", metrics={"loss": "loss", "accuracy": accuracy}, jit=jit)
    x = np.array([[1, 2, 0, 0], [3, 4, 1, 0]], np.int32)
    y = np.array([[2, 3, 0, 0], [4, 1, 2, 0]], np.int32)
    logits = model.predict(x, batch_size=2)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
    keep = y != 0
    expected_loss = picked[keep].mean()
    expected_accuracy = (logits.argmax(-1) == y)[keep].mean()
    got_loss, got_accuracy = model.evaluate(x, y, batch_size=2, verbose=0)
    assert got_loss == pytest.approx(expected_loss, rel=1e-5)
    assert got_accuracy == pytest.approx(expected_accuracy)
