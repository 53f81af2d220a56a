"""``fit`` on several MPI ranks: what the hooks of ``tapegrad/nn/models/trainer.py`` call
when the process is one of several ranks (launched by ``mpirun``).

For the whole call (:meth:`FitSupport.fit`), on every rank: the model's training step is
wrapped and a :class:`StepSync` is installed as ``model._gradient_sync``, which the
trainer's steps hand their gradients to -- the eager step while backprop runs (each
bucket's allreduce starts as soon as its gradients are complete), the compiled step in
its update effect, between the graph's gradients and the optimizer update. On ranks other
than 0 the progress bar is off, callbacks marked ``main_rank_only`` (``ModelCheckpoint``)
are left out, and stdout is discarded, so that progress, logs and checkpoints come from
rank 0 only.

Before the first step (:meth:`FitSupport.prepare`): the model is built if it was not,
rank 0's weights (all of them, trainable or not) and optimizer state are broadcast, and
the training data is sharded (:mod:`.sharding`): global batches of ``N * batch_size``
samples in one shuffled order drawn alike on every rank, each rank taking its part.

Each step: a rank's gradients and loss are weighted by its number of samples, summed over
the ranks and divided by the step's total (:mod:`.buckets`): the gradient of the mean loss
over the global batch, as one process with batch ``N * batch_size`` computes it (up to
rounding). Every rank then makes the same update, or none when the loss is not finite on
some rank. A rank without samples in the last step of an epoch contributes zeros and
updates like the others. The loss and the number of samples the trainer records are those
of the global batch, and with metrics the targets and predictions of all ranks are
gathered, so the logs (and every callback's decisions) are the same on every rank and
equal one process's.

Resuming: ``fit(initial_epoch=k)`` draws the shuffled orders of the first ``k`` epochs and
skips them, so that a run resumed from a checkpoint (``tapegrad.load_model``) with the
library seeded as before (``tapegrad.set_seed`` right before ``fit``) continues exactly as
the uninterrupted run.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Callable

import numpy as np

from ..autodiff import state as _state
from ..errors import OpValueError
from . import buckets, collectives, sharding
from . import comm as _comm

_OWNER = "fit (data-parallel)"


def _rows(x: Any) -> int:
    if isinstance(x, (list, tuple)):
        x = x[0]
    return x.shape[0] if x.ndim else 1


def _numpy(x: Any) -> Any:
    if x is None or isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)):
        return [_numpy(a) for a in x]
    value = getattr(x, "value", None)
    return value() if callable(value) else np.asarray(x)


def _concatenate(parts: list[Any]) -> Any:
    first = parts[0]
    if first is None:
        return None
    if isinstance(first, list):
        return [np.concatenate([p[i] for p in parts]) for i in range(len(first))]
    return np.concatenate(parts) if len(parts) > 1 else first


class StepSync:
    """Averages one training step's gradients and loss over the ranks (installed as
    ``model._gradient_sync`` for the duration of a data-parallel ``fit``)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.averager = buckets.default_averager()
        self.weight = 1.0  # this rank's samples in the current step
        self.loss = math.nan  # the step's loss over all ranks
        self.samples = 0.0  # the step's samples over all ranks
        self.params: list[Any] | None = None  # the parameters of the last step

    def gradients(self, tape: Any, loss: Any, params: list[Any]) -> tuple[float, list[Any]]:
        """The eager step: backprop on ``tape``, each bucket averaged as soon as it is complete."""
        step = self.averager.begin(params, self.weight, _OWNER)
        try:
            tape.gradient_streamed(loss, params, step.put)
        except BaseException:
            step.abandon()
            raise
        return self._finish(step, float(loss._value), params)

    def average(self, loss: float, grads: Any, params: list[Any]) -> tuple[float, list[Any]]:
        """The compiled step's update effect: the graph's gradients, averaged."""
        step = self.averager.begin(params, self.weight, _OWNER)
        for i in range(len(grads) - 1, -1, -1):
            step.put(i, grads[i])
        return self._finish(step, float(loss), params)

    def _finish(self, step: buckets.AveragingStep, loss: float, params: list[Any]) -> tuple[float, list[Any]]:
        grads, self.loss, self.samples = step.finish(loss)
        self.params = params
        return self.loss, grads

    def empty_step(self) -> float:
        """This rank has no samples in this step: contribute nothing, update like the others."""
        params = self.params if self.params is not None else self._model.trainable_variables()
        self.weight = 0.0
        loss, grads = self._finish(self.averager.begin(params, 0.0, _OWNER), 0.0, params)
        if loss - loss == 0.0:
            self._model.optimizer.update(params, grads)
        return loss


class FitSupport:
    """The data-parallel part of ``fit`` (see the module docstring)."""

    def __init__(self) -> None:
        self.model: Any = None
        self.sync: StepSync | None = None

    def outside(self, model: Any) -> bool:
        """Whether ``fit`` was called by the user (not by :meth:`fit` for this model)."""
        return self.model is not model

    def fit(self, model: Any, fit: Callable[..., Any], arguments: dict[str, Any]) -> Any:
        """Run ``fit(**arguments)`` data-parallel (see the module docstring)."""
        world = _comm.init()
        if self.model is not None:
            raise OpValueError(f"{_OWNER}: {getattr(self.model, 'name', 'a model')} is being trained already; "
                               f"data-parallel fit calls cannot be nested")
        main = world.rank == 0
        arguments = dict(arguments)
        callbacks = list(arguments.get("callbacks") or [])
        if not main:
            callbacks = [cb for cb in callbacks if not getattr(cb, "main_rank_only", False)]
            arguments["verbose"] = 0
        arguments["callbacks"] = callbacks
        sync = StepSync(model)
        train_fn = model._train_fn
        self.model, self.sync = model, sync
        model._gradient_sync = sync
        model._train_fn = self._step(train_fn, sync)
        quiet = None if main else open(os.devnull, "w")  # noqa: SIM115 - closed below
        try:
            with contextlib.redirect_stdout(quiet) if quiet is not None else contextlib.nullcontext():
                return fit(**arguments)
        finally:
            model._train_fn = train_fn
            model._gradient_sync = None
            self.model = self.sync = None
            if quiet is not None:
                quiet.close()

    @staticmethod
    def _step(train_fn: Callable[[Any, Any], tuple[Any, Any]], sync: StepSync) -> Callable[[Any, Any], Any]:
        def step(x: Any, y: Any) -> tuple[float, Any]:
            if x is sharding.NO_BATCH:
                return sync.empty_step(), None
            sync.weight = float(_rows(x))
            _, predictions = train_fn(x, y)
            return sync.loss, predictions

        return step

    def prepare(self, model: Any, train: Any, initial_epoch: int) -> Any:
        """Before the first step: build, broadcast rank 0's weights and optimizer state,
        and return this rank's shard of ``train``."""
        from ..nn.data import NDArrayDataset

        world = _comm.world()
        inner = getattr(train, "dataset", None)  # a user's dataset, wrapped to cast its floats
        if isinstance(inner, (sharding.ShardedArrays, sharding.ShardedBatches)):
            raise OpValueError("fit: x is the result of tapegrad.distributed.shard(); under mpirun fit shards by "
                               "itself: pass the dataset (or the arrays) unsharded")
        arrays = train if isinstance(train, NDArrayDataset) else inner if isinstance(inner, NDArrayDataset) else None
        if arrays is not None and arrays.dataset_size() < world.size:
            raise OpValueError(f"fit: {world.size} ranks need at least {world.size} training samples, got "
                               f"{arrays.dataset_size()}")
        if not model.built:
            self._build(model, arrays, train)
        collectives.broadcast_variables(model.variables(), root=0)
        collectives.broadcast_optimizer_state(model.optimizer, root=0)
        if arrays is not None:
            return sharding.ShardedArrays(arrays, world, keep_partial=True, skip_epochs=initial_epoch,
                                          dtype=getattr(train, "dtype", None) if arrays is inner else None)
        return sharding.ShardedBatches(train, world, keep_partial=True)

    @staticmethod
    def _build(model: Any, arrays: Any, train: Any) -> None:
        """Create the weights from the first sample (rank 0's are broadcast next)."""
        if arrays is not None:
            inputs = arrays.inputs
            first = [a[:1] for a in inputs] if isinstance(inputs, list) else inputs[:1]
        else:
            batch = next(iter(train))
            first = batch[0] if isinstance(batch, tuple) else batch
        with _state.paused():
            model(first, False)

    def step_totals(self, trues: Any, predictions: Any, metrics: Any) -> tuple[int, Any, Any]:
        """The step's samples over all ranks and, when there are ``metrics`` to update,
        the targets and predictions of all ranks in rank order (the global batch's)."""
        sync = self.sync
        samples = int(sync.samples) if sync is not None else 0
        if not metrics:
            return samples, trues, predictions
        mine = None if predictions is None else (_numpy(trues), _numpy(predictions))
        parts = [p for p in _comm.world().allgather(mine) if p is not None]
        return samples, _concatenate([p[0] for p in parts]), _concatenate([p[1] for p in parts])


_support = FitSupport()


def support() -> FitSupport:
    return _support
