"""Seed 003's custom training loop: Dense(128, sigmoid) -> Dense(2), sparse softmax
cross-entropy from logits, Adam, the seed's six samples as one batch, 100 epochs with the
loss read back as a Python float every epoch; reported in milliseconds per 100 epochs
(warm: the model and the step already built).

    python bench/seed_training.py                    # warm, every framework
    python bench/seed_training.py --cold             # fresh processes: import + build + 100 epochs

Frameworks: tapegrad (the seed's loop, eager: AbstractModel, GradientTape, optimizer.update),
tapegrad_function (that step compiled with g.Function), torch (eager), numpy (hand-written).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import harness
import numpy as np

NAME = "seed_training"
UNIT = "ms per 100 epochs"
EPOCHS = 100
X = np.array([[1, 3], [1, 4], [2, 4], [3, 1], [4, 1], [4, 2]], np.float32)
Y = np.array([0, 0, 0, 1, 1, 1], np.int32)


def per_call_scale(args) -> float:
    return 1e3


def build_tapegrad(args, compiled=False):
    import tapegrad

    nn = tapegrad.NeuralNetworks()
    g, K = nn.gradient(), nn.backend()

    class TestModel(tapegrad.AbstractModel):
        def __init__(self, builder):
            super().__init__(builder)
            self.dense1 = builder.layers.Dense(128, input_shape=[2], activation="sigmoid")
            self.dense2 = builder.layers.Dense(2)

        def call(self, inputs, training=None, trues=None):
            return self.dense2(self.dense1(inputs, training), training)

    model = TestModel(nn)
    lossfunc = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = nn.optimizers.Adam()
    dataset = nn.data.NDArrayDataset(X, tests=Y, batch_size=64, shuffle=False)

    def step(inputs, trues):
        with g.GradientTape() as tape:
            loss = lossfunc(trues, model(inputs, True, trues))
        params = model.trainable_variables()
        optimizer.update(params, tape.gradient(loss, params))
        return loss

    if compiled:
        step = g.Function(step)

    def train100():
        for _ in range(EPOCHS):
            total = 0.0
            for inputs, trues in dataset:
                total += K.scalar(step(g.Variable(inputs), g.Variable(trues)).value()
                                  if not compiled else step(inputs, trues).value())
        return total

    return train100


def build_tapegrad_function(args):
    return build_tapegrad(args, compiled=True)


def build_torch(args):
    import torch
    import torch.nn.functional as functional

    l1, l2 = torch.nn.Linear(2, 128), torch.nn.Linear(128, 2)
    optimizer = torch.optim.Adam(list(l1.parameters()) + list(l2.parameters()))
    tx, ty = torch.from_numpy(X), torch.from_numpy(Y.astype(np.int64))

    def train100():
        for _ in range(EPOCHS):
            optimizer.zero_grad(set_to_none=True)
            loss = functional.cross_entropy(l2(torch.sigmoid(l1(tx))), ty)
            loss.backward()
            optimizer.step()
            total = loss.item()
        return total

    return train100


FRAMEWORKS = {"tapegrad": build_tapegrad, "tapegrad_function": build_tapegrad_function, "torch": build_torch}

COLD = """
import time
t0 = time.perf_counter()
import sys
sys.path.insert(0, {here!r})
import seed_training, argparse
fn = seed_training.FRAMEWORKS[{fw!r}](argparse.Namespace())
fn()
"""


def cold(frameworks: list[str], rounds: int) -> None:
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    # A normal install writes bytecode at install time; this machine sets
    # PYTHONDONTWRITEBYTECODE=1, which would make every cold start compile from source.
    import tapegrad

    subprocess.run([sys.executable, "-m", "compileall", "-q", tapegrad.__path__[0]], check=True)
    walls: dict[str, list[float]] = {f: [] for f in frameworks}
    for _ in range(rounds):
        for fw in frameworks:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", COLD.format(here=here, fw=fw)], check=True)
            walls[fw].append(time.perf_counter() - t0)
    print(f"seed_training cold (s: a fresh process imports, builds and trains 100 epochs; median of {rounds})")
    for fw, w in walls.items():
        print(f"  {fw:24s} {statistics.median(w):.3f}")


def options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--cold", action="store_true")


if __name__ == "__main__":
    if "--cold" in sys.argv:
        fws = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--framework=")), "tapegrad,torch")
        cold(fws.split(","), 7)
    else:
        harness.main(__import__(__name__), options)
