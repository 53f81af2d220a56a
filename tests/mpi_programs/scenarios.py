"""The training runs of the MPI tests, shared by the program that mpirun starts
(run.py) and by the tests, which compute the single-process references with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tapegrad

N_RANKS = 2
BATCH = 4  # per rank
SAMPLES = 33  # 4 global batches of 8 and one of 1 sample: rank 1 has nothing in that step
EPOCHS = 3


def data(samples: int = SAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((samples, 5)), rng.integers(0, 3, samples)


def model(nn, jit: bool, seed: int = 1):
    tapegrad.set_seed(seed)
    m = nn.models.Sequential([nn.layers.Dense(8, input_shape=[5], activation="tanh"), nn.layers.Dense(3)])
    m.compile(optimizer=nn.optimizers.Adam(0.01), loss=nn.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"], jit=jit)
    m.build()
    return m


def fit_run(jit: bool, batch_size: int, callbacks=None, epochs: int = EPOCHS, verbose: int = 0):
    """fit with validation data and metrics; returns (history dict, weights)."""
    nn = tapegrad.NeuralNetworks(dtype="float64")
    m = model(nn, jit)
    x, y = data()
    validation = data(9, seed=1)
    tapegrad.set_seed(5)  # the shuffling of every epoch
    history = m.fit(x, y, epochs=epochs, batch_size=batch_size, validation_data=validation, verbose=verbose,
                    callbacks=callbacks)
    return history.history, m.get_weights()


def checkpointed_fit(directory: Path, batch_size: int, epochs: int, callbacks=(), initial: Path | None = None):
    """fit (compiled) saving the model after every epoch; from the checkpoint ``initial``
    when given (then from its epoch on). Returns the final weights."""
    nn = tapegrad.NeuralNetworks(dtype="float64")
    x, y = data()
    ckpt = tapegrad.callbacks.ModelCheckpoint(str(directory / "ckpt-{epoch}.tgm"))
    if initial is None:
        m, first = model(nn, True), 0
    else:
        m, first = tapegrad.load_model(initial), int(initial.stem.split("-")[1])
    tapegrad.set_seed(5)
    m.fit(x, y, epochs=epochs, batch_size=batch_size, initial_epoch=first, verbose=0, callbacks=[ckpt, *callbacks])
    return m.get_weights()


def custom_loop(distributed: bool, averaging_tape: bool, epochs: int = 2):
    """The seed-style custom loop on 32 samples (4 global batches of 8). Distributed: each
    rank starts from its own weights, rank 0's are broadcast; returns (weights, the number
    of averagings done)."""
    nn = tapegrad.NeuralNetworks(dtype="float64")
    g = nn.gradient()
    x, y = data(32)
    if distributed:
        import tapegrad.distributed as dist

        m = model(nn, False, seed=100 + dist.rank())
        dist.broadcast_variables(m.variables(), root=0)
        optimizer = dist.DistributedOptimizer(nn.optimizers.Adam(0.01))
        dataset = dist.shard(nn.data.NDArrayDataset(x, tests=y, batch_size=BATCH, seed=7))
        tape_class = dist.GradientTape if averaging_tape else g.GradientTape
        start = optimizer.averager.steps
    else:
        m = model(nn, False, seed=100)
        optimizer = nn.optimizers.Adam(0.01)
        dataset = nn.data.NDArrayDataset(x, tests=y, batch_size=BATCH * N_RANKS, seed=7)
        tape_class = g.GradientTape
    lossfunc = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    params = m.trainable_variables()
    for _ in range(epochs):
        for inputs, trues in dataset:
            with tape_class() as tape:
                loss = lossfunc(trues, m(g.Variable(inputs), True))
            optimizer.update(params, tape.gradient(loss, params))
    averagings = optimizer.averager.steps - start if distributed else 0
    return m.get_weights(), averagings


class Batches:
    """A plain iterable dataset: ``count`` batches of the 33 samples (the last one short),
    or, ``merged``, the concatenation of each pair (what a step of 2 ranks dealing them
    round-robin trains on)."""

    def __init__(self, merged: bool, count: int = 5) -> None:
        x, y = data()
        cuts = np.linspace(0, len(x), count + 1).astype(int)
        parts = [(x[a:b], y[a:b]) for a, b in zip(cuts, cuts[1:])]
        if merged:
            parts = [(np.concatenate([p[0] for p in pair]), np.concatenate([p[1] for p in pair]))
                     for pair in (parts[i:i + N_RANKS] for i in range(0, len(parts), N_RANKS))]
        self.parts = parts

    def __len__(self) -> int:
        return len(self.parts)

    def __iter__(self):
        return iter(self.parts)


def dataset_fit(merged: bool):
    """fit (compiled) on a plain iterable of 5 batches: on 2 ranks the third step has one
    batch only (rank 1 has none). Returns the weights."""
    nn = tapegrad.NeuralNetworks(dtype="float64")
    m = model(nn, True)
    m.fit(Batches(merged), epochs=2, verbose=0)
    return m.get_weights()
