"""The training loop: ``fit``, ``evaluate`` and ``predict`` and the steps they run, as the
mixin :class:`Trainer` of :class:`~tapegrad.nn.models.Model` (Keras keeps its Trainer apart
from the Model in the same way).

The loop is split into steps that take one batch of NumPy arrays --
:meth:`Trainer.train_step` and :meth:`Trainer.test_step` return ``(loss as a float,
predictions)``, :meth:`Trainer.predict_step` the predictions as NumPy -- and ``fit`` /
``evaluate`` / ``predict`` call them through ``self._train_fn``, ``self._test_fn`` and
``self._predict_fn``, set by ``compile``: with ``jit=True`` those are :class:`_Compiled`
versions of the steps (a compiled train step keeps the rule below: no update from a
non-finite loss). The loops themselves only slice batches, update the metrics with NumPy
and call the callbacks. The arguments are checked once, before the first step
(:mod:`.data_adapter`), and so are the targets against the loss (``Loss._check_trues``):
a compiled step never runs Python checks.

Non-finite losses: ``train_step`` never applies an update computed from a NaN or
infinite loss. ``fit`` then stops at that batch: by default it raises
:class:`NonFiniteLossError` (a ``ValueError``) naming the epoch and the batch, with
the weights as they were after the last finite step and ``model.history`` (also
``error.history``) holding the completed epochs; with a
:class:`~tapegrad.nn.models.callbacks.TerminateOnNaN` callback it stops gracefully
instead (the callback prints the epoch and batch) and returns that History.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from ...autodiff.tape import GradientTape
from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from . import data_adapter
from .data_adapter import batch_len, length, to_numpy

if TYPE_CHECKING:  # imported when fit/evaluate/predict first run: importing the models stays cheap
    from .callback_base import Callback, CallbackList
    from .callbacks import TerminateOnNaN
    from .history import History
    from .progress import Progbar


class NonFiniteLossError(OpValueError):
    """``fit`` met a NaN or infinite loss. ``epoch`` and ``batch`` (0-based) say where;
    ``history`` holds the completed epochs. The update of that batch was not applied."""

    def __init__(self, message: str, epoch: int, batch: int, history: History) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.history = history


class Trainer:
    """``fit`` / ``evaluate`` / ``predict`` and their steps, for :class:`~tapegrad.nn.models.Model`
    (which provides ``__call__``, the compiled configuration and the tracked variables)."""

    # provided by Model (its __call__, compile() and variable tracking as well)
    name: str
    dtype: np.dtype
    output_shape: Any
    optimizer: Any
    _loss_fn: Any
    _metrics: list[Any]
    _metric_names: list[str]
    _train_fn: Callable[[Any, Any], tuple[Any, Any]]
    _test_fn: Callable[[Any, Any], tuple[Any, Any]]
    _predict_fn: Callable[[Any], Any]
    history: History | None
    stop_training: bool
    _run: Callable[..., Any]  # model(inputs, training=..., trues=...), a list spread over call's inputs
    # Data-parallel training (tapegrad.distributed) installs its gradient averaging here
    # for the duration of a fit under mpirun; None otherwise.
    _gradient_sync: Any = None

    def _require_compiled(self, what: str, need_loss: bool = True) -> None:
        if self.optimizer is None and what == "fit":
            raise OpValueError(f"{self.name}: call compile(optimizer, loss, metrics) before {what}()")
        if need_loss and self._loss_fn is None:
            raise OpValueError(f"{self.name}: {what}() needs a loss: call compile(..., loss=...) first")

    # -- the steps (arrays in, arrays out; a compiler may replace _train_fn & co.) ---------
    def compute_loss(self, trues: Any, predictions: Any) -> Variable:
        """The scalar training loss of a batch (per-sample losses are averaged)."""
        loss = self._loss_fn(trues, predictions)
        if loss.ndim:
            from ... import ops

            loss = ops.reduce_mean(loss)
        return loss

    def train_step(self, x: Any, y: Any, call_trues: Any = None) -> tuple[float, Any]:
        """One optimisation step on a batch: the forward pass under a GradientTape, the
        gradients of the loss, the optimizer update. Returns ``(loss, predictions)``.
        If the loss is not finite, no update is applied. ``call_trues``: the targets that
        ``call`` sees when they differ from the loss's ``y`` (``true_values_filter``)."""
        with GradientTape() as tape:
            predictions = self._run(x, True, y if call_trues is None else call_trues)
            loss = self.compute_loss(y, predictions)
        value = float(loss._value)
        sync = self._gradient_sync
        if sync is not None:  # several ranks: loss and gradients averaged over them, during backprop
            t = self._tracked()
            value, grads = sync.gradients(tape, loss, t.trainable)
            if value - value == 0.0:
                self.optimizer.update(t.trainable, grads)
            return value, predictions
        if value - value == 0.0:  # finite (NaN and inf give nan)
            t = self.__dict__["_tracking"]
            if t is None or not t.valid():
                t = self._tracked()
            params = t.trainable
            self.optimizer.update(params, tape.gradient(loss, params))
        return value, predictions

    # The compiled steps (jit=True): the same computations as graphs. The optimizer update
    # is an effect of the training graph, skipped when the loss is not finite.
    def _graph_train_step(self, x: Any, y: Any, call_trues: Any = None) -> tuple[Variable, Any]:
        from ...compiler.tracing import run_effect

        with GradientTape() as tape:
            predictions = self._run(x, True, y if call_trues is None else call_trues)
            loss = self.compute_loss(y, predictions)
        t = self.__dict__["_tracking"]
        if t is None or not t.valid():
            t = self._tracked()
        params = t.trainable
        pairs = [(p, g) for p, g in zip(params, tape.gradient(loss, params)) if g is not None]
        updated = [p for p, _ in pairs]

        def update(loss_value: Any, *grads: Any) -> None:
            sync = self._gradient_sync
            if sync is not None:  # several ranks: loss and gradients averaged over them first
                loss_value, grads = sync.average(loss_value, grads, updated)
            if np.isfinite(loss_value):
                self.optimizer.update(updated, list(grads))

        run_effect("update", update, [loss, *(g for _, g in pairs)], f"{type(self.optimizer).__name__}.update")
        return loss, predictions, output_masks(predictions)

    def _graph_test_step(self, x: Any, y: Any, call_trues: Any = None) -> tuple[Variable, Any]:
        predictions = self._run(x, False, y if call_trues is None else call_trues)
        return self.compute_loss(y, predictions), predictions, output_masks(predictions)

    def _graph_predict_step(self, x: Any) -> Any:
        return self._run(x, False)

    def test_step(self, x: Any, y: Any, call_trues: Any = None) -> tuple[float, Any]:
        """The loss and predictions of a batch in inference mode."""
        predictions = self._run(x, False, y if call_trues is None else call_trues)
        return float(self.compute_loss(y, predictions)._value), predictions

    def predict_step(self, x: Any) -> Any:
        """The predictions of a batch in inference mode, as NumPy arrays."""
        return to_numpy(self._run(x, False))

    # -- fit -------------------------------------------------------------------------------
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        epochs: int = 1,
        batch_size: int | None = 32,
        validation_data: Any = None,
        shuffle: bool = True,
        verbose: int | str = 1,
        callbacks: Iterable[Callback] | None = None,
        *,
        validation_split: float = 0.0,
        initial_epoch: int = 0,
        true_values_filter: Callable[[Any], Any] | None = None,
    ) -> History:
        """Train for ``epochs`` epochs (from ``initial_epoch``) and return the History.

        The arguments up to ``callbacks`` may be given by position, in the contract's order
        (``epochs`` before ``batch_size``, unlike Keras); the others are keyword-only.

        ``x`` and ``y`` are arrays (a list of arrays for several inputs), or ``x`` is a
        dataset yielding ``(inputs, trues)`` batches and ``y`` is None.
        ``validation_data`` is ``(x_val, y_val)`` or a dataset; ``validation_split``
        holds out that fraction of the arrays (the last samples, before shuffling).
        ``verbose``: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.
        Stops early when a callback sets ``model.stop_training``. A NaN or infinite loss
        stops training at that batch (see the module docstring).
        ``true_values_filter`` (Rindow's ``trueValuesFilter``): a function of a batch's
        targets whose result the loss and the metrics see instead (``call`` still gets the
        targets as they are); by default the model's own ``true_values_filter(trues)``
        method, if it defines one.
        Launched by ``mpirun`` on several ranks, ``fit`` trains data-parallel, ``batch_size``
        per rank (:mod:`tapegrad.distributed.fit`, docs/distributed.md).
        """
        from . import progress
        from .callbacks import CallbackList, TerminateOnNaN
        from .history import History

        self._require_compiled("fit")
        parallel = _data_parallel()
        if parallel is not None and parallel.outside(self):  # one of several MPI ranks: tapegrad.distributed
            return parallel.fit(self, self.fit, {
                "x": x, "y": y, "epochs": epochs, "batch_size": batch_size, "validation_data": validation_data,
                "shuffle": shuffle, "verbose": verbose, "callbacks": callbacks,
                "validation_split": validation_split, "initial_epoch": initial_epoch,
                "true_values_filter": true_values_filter})
        verbose, batch_size = _verbosity(verbose, "fit"), _batch_size(batch_size)
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise OpValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
        if validation_split and validation_data is None:
            x, y, validation_data = data_adapter.split_validation(x, y, validation_split, self.dtype)
        trues_filter = self._trues_filter(true_values_filter, "fit")
        train, trues = data_adapter.make_dataset(x, y, self.dtype, batch_size, shuffle, "fit")
        self._check_trues(self._filtered(trues, trues_filter), "fit", "y")
        if parallel is not None:  # rank 0's weights and optimizer state everywhere; this rank's shard
            train = parallel.prepare(self, train, initial_epoch)
        val = None
        if validation_data is not None:
            val, val_trues = data_adapter.validation_dataset(validation_data, self.dtype, batch_size)
            self._check_trues(self._filtered(val_trues, trues_filter), "fit", "the y of validation_data")
        steps = length(train)
        history = History()
        cbs = CallbackList([*(callbacks or []), history], self, {
            "epochs": epochs, "steps": steps, "verbose": verbose, "batch_size": batch_size,
        })
        terminators = [cb for cb in cbs if isinstance(cb, TerminateOnNaN)]
        self.history = history
        self.stop_training = False
        metrics, names = self._metrics, self._metric_names
        batch_hooks = cbs.train_batch_hooks
        logs: dict[str, Any] = {}
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            for m in metrics:
                m.reset_state()
            cbs.on_epoch_begin(epoch)
            if verbose == 1:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            bar = progress.Progbar(steps, verbose)
            start = time.perf_counter()
            total = 0.0
            count = 0
            done = 0
            stopped_by_nan = False
            train_fn = self._train_fn
            for xb, yb in train:
                if batch_hooks:
                    cbs.on_train_batch_begin(done)
                if trues_filter is not None:
                    yb, call_trues = self._filtered(yb, trues_filter), yb
                    loss, predictions = train_fn(xb, yb, call_trues)
                else:
                    loss, predictions = train_fn(xb, yb)
                if not loss - loss == 0.0:  # NaN or inf: the step applied no update
                    running = {"loss": loss, **{k: float(m.result()) for k, m in zip(names, metrics)}}
                    self._non_finite(loss, epoch, epochs, done, steps, bar, running, terminators, history)
                    stopped_by_nan = True
                    break
                n = batch_len(xb)
                if parallel is not None:  # the global batch's samples, targets and predictions
                    n, yb, predictions = parallel.step_totals(yb, predictions, metrics)
                total += loss * n
                count += n
                if metrics:
                    trues, preds = to_numpy(yb), for_metrics(predictions)
                    for m in metrics:
                        m.update_state(trues, preds)
                done += 1
                if batch_hooks:
                    cbs.on_train_batch_end(done - 1, self._running(total, count))
                if bar.due():
                    bar.update(done, self._running(total, count))
                if self.stop_training:
                    break
            if stopped_by_nan:
                break  # the interrupted epoch is not recorded
            if not done:
                raise OpValueError(f"fit: the dataset given as x yielded no batches in epoch {epoch + 1}: there is "
                                   f"nothing to train on")
            logs = self._running(total, count)
            if val is not None:
                val_logs = self._test_loop(val, cbs, 0, "fit: the validation dataset", trues_filter)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            if verbose == 1:
                bar.finish(done, logs)
            elif verbose == 2:
                print(progress.epoch_line(epoch, epochs, time.perf_counter() - start, done, logs), flush=True)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)
        return history

    def _running(self, total: float, count: int) -> dict[str, Any]:
        logs: dict[str, Any] = {"loss": total / count if count else float("nan")}
        for name, m in zip(self._metric_names, self._metrics):
            logs[name] = float(m.result())
        return logs

    def _non_finite(self, loss: float, epoch: int, epochs: int, step: int, steps: int | None,
                    bar: Progbar, running: dict[str, Any], terminators: list[TerminateOnNaN],
                    history: History) -> None:
        if bar.dynamic and bar.verbose == 1:
            bar.stream.write("\n")
        if terminators:
            for cb in terminators:
                cb.on_train_batch_end(step, running)
            self.stop_training = True
            return
        done = len(history.epoch)
        raise NonFiniteLossError(
            f"fit: the loss is {loss} at epoch {epoch + 1}/{epochs}, batch {step + 1}/{steps or '?'}; "
            f"training stopped. This batch's update was not applied: the weights are those after the "
            f"last finite step, and model.history holds the {done} completed epoch(s). "
            f"(Pass callbacks=[TerminateOnNaN()] to stop without an exception.)",
            epoch, step, history,
        )

    # -- evaluate ----------------------------------------------------------------------------
    def _test_loop(self, data: Any, cbs: CallbackList, verbose: int, source: str,
                   trues_filter: Callable[[Any], Any] | None = None) -> dict[str, float]:
        from . import progress

        metrics, names = self._metrics, self._metric_names
        for m in metrics:
            m.reset_state()
        steps = length(data)
        bar = progress.Progbar(steps, verbose)
        cbs.on_test_begin()
        hooks = cbs.test_batch_hooks
        test_fn = self._test_fn
        total = 0.0
        count = 0
        done = 0
        for xb, yb in data:
            if hooks:
                cbs.on_test_batch_begin(done)
            if trues_filter is not None:
                yb, call_trues = self._filtered(yb, trues_filter), yb
                loss, predictions = test_fn(xb, yb, call_trues)
            else:
                loss, predictions = test_fn(xb, yb)
            n = batch_len(xb)
            total += loss * n
            count += n
            if metrics:
                trues, preds = to_numpy(yb), for_metrics(predictions)
                for m in metrics:
                    m.update_state(trues, preds)
            done += 1
            if hooks:
                cbs.on_test_batch_end(done - 1, self._running(total, count))
            if bar.due():
                bar.update(done, self._running(total, count))
        if not done:
            raise OpValueError(f"{source} yielded no batches: there is nothing to evaluate")
        logs = self._running(total, count)
        if verbose == 1:
            bar.finish(done, logs)
        cbs.on_test_end(logs)
        return {"loss": logs["loss"], **{k: logs[k] for k in names}}

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        *,
        batch_size: int | None = 32,
        verbose: int | str = 1,
        return_dict: bool = False,
        callbacks: Iterable[Callback] | None = None,
        true_values_filter: Callable[[Any], Any] | None = None,
    ) -> float | list[float] | dict[str, float]:
        """The loss (and metrics) on ``x``, ``y`` in inference mode, in batches. Returns
        the loss alone when there are no metrics, else ``[loss, *metrics]``; with
        ``return_dict`` a dict ``{"loss": ..., "accuracy": ...}``. ``true_values_filter``
        as in :meth:`fit`."""
        from . import progress
        from .callbacks import CallbackList

        self._require_compiled("evaluate")
        verbose, batch_size = _verbosity(verbose, "evaluate"), _batch_size(batch_size)
        trues_filter = self._trues_filter(true_values_filter, "evaluate")
        data, trues = data_adapter.make_dataset(x, y, self.dtype, batch_size, False, "evaluate")
        self._check_trues(self._filtered(trues, trues_filter), "evaluate", "y")
        cbs = CallbackList(callbacks, self, {"steps": length(data), "verbose": verbose})
        logs = self._test_loop(data, cbs, 2 if verbose == 2 else verbose, "evaluate: the dataset given as x",
                               trues_filter)
        if verbose == 2:
            print(progress.format_logs(logs).removeprefix(" - "), flush=True)
        if return_dict:
            return logs
        if not self._metrics:
            return logs["loss"]
        return list(logs.values())

    # -- predict -----------------------------------------------------------------------------
    def predict(
        self,
        x: Any,
        *,
        batch_size: int | None = 32,
        verbose: int | str = 0,
        callbacks: Iterable[Callback] | None = None,
    ) -> Any:
        """The model's outputs for ``x`` in inference mode, computed ``batch_size`` samples
        at a time, as a NumPy array (a list of arrays for several outputs). ``x`` may be a
        dataset (its trues are ignored)."""
        from . import progress
        from .callbacks import CallbackList

        verbose, batch_size = _verbosity(verbose, "predict"), _batch_size(batch_size)
        data, _ = data_adapter.make_dataset(x, None, self.dtype, batch_size, False, "predict")
        steps = length(data)
        cbs = CallbackList(callbacks, self, {"steps": steps, "verbose": verbose})
        bar = progress.Progbar(steps, verbose)
        hooks = cbs.predict_batch_hooks
        cbs.on_predict_begin()
        predict_fn = self._predict_fn
        outputs: list[Any] = []
        for step, batch in enumerate(data):
            xb = batch[0] if isinstance(batch, tuple) else batch
            if hooks:
                cbs.on_predict_batch_begin(step)
            out = predict_fn(xb)
            outputs.append(out)
            if hooks:
                cbs.on_predict_batch_end(step, {"outputs": out})
            if bar.due():
                bar.update(step + 1, {})
        if verbose == 1:
            bar.finish(len(outputs), {})
        cbs.on_predict_end()
        if not outputs:
            raise OpValueError("predict: the dataset given as x yielded no batches: there is nothing to predict")
        first = outputs[0]
        if isinstance(first, (list, tuple)):
            return [np.concatenate([o[i] for o in outputs]) for i in range(len(first))]
        return np.concatenate(outputs) if len(outputs) > 1 else first

    # -- single batches (Keras) ----------------------------------------------------------------
    def train_on_batch(self, x: Any, y: Any) -> float:
        """One training step on one batch; returns its loss."""
        self._require_compiled("fit")
        x, y = self._batch_arrays(x, y, "train_on_batch")
        loss, _ = self._train_fn(x, y)
        return loss

    def test_on_batch(self, x: Any, y: Any) -> float:
        """The loss of one batch in inference mode."""
        self._require_compiled("evaluate")
        return self._test_fn(*self._batch_arrays(x, y, "test_on_batch"))[0]

    def predict_on_batch(self, x: Any) -> Any:
        """The outputs for one batch, as NumPy."""
        return self._predict_fn(self._batch_arrays(x, None, "predict_on_batch")[0])

    def _batch_arrays(self, x: Any, y: Any, owner: str) -> tuple[Any, Any]:
        x = data_adapter.as_arrays(x, self.dtype, owner, "x")
        y = data_adapter.as_arrays(y, self.dtype, owner, "y")
        self._check_trues(y, owner, "y")
        return x, y

    def _trues_filter(self, given: Any, owner: str) -> Callable[[Any], Any] | None:
        """The ``true_values_filter`` of ``fit``/``evaluate``, else the model's method of that name."""
        if given is None:
            given = getattr(self, "true_values_filter", None)
        if given is not None and not callable(given):
            raise OpTypeError(f"{owner}: true_values_filter must be a function of the targets, got "
                               f"{type(given).__name__}")
        return given

    def _filtered(self, trues: Any, trues_filter: Callable[[Any], Any] | None) -> Any:
        if trues_filter is None or trues is None:
            return trues
        return data_adapter.cast_to(trues_filter(trues), self.dtype)

    def _check_trues(self, trues: Any, owner: str, arg: str) -> None:
        """Targets that the loss cannot take (binary labels outside [0, 1], class indices out
        of range, ...) are refused here, once, before any step: a compiled step runs no
        Python checks."""
        check = getattr(self._loss_fn, "_check_trues", None)
        if check is None or not isinstance(trues, np.ndarray):
            return
        shape = self.output_shape
        classes = shape[-1] if isinstance(shape, tuple) and shape and isinstance(shape[-1], int) else None
        try:
            check(trues, classes)
        except OpValueError as exc:
            raise OpValueError(f"{owner}: {arg} does not suit the loss: {exc}") from None


# -- helpers -------------------------------------------------------------------------------------
def _verbosity(verbose: Any, owner: str) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, float):
        raise OpValueError(f"{owner}: verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _batch_size(batch_size: Any) -> int:
    return 32 if batch_size is None else batch_size


def _data_parallel() -> Any:
    """tapegrad.distributed's support for fit when this process is one of several MPI
    ranks (it reads the launcher's environment: no MPI import otherwise), else None."""
    from ...distributed import _launch

    if not _launch.several_ranks():
        return None
    from ...distributed.fit import support

    return support()



class _Compiled:
    """A compiled step with the eager step's interface: arrays in, (float loss, NumPy
    predictions) out for training and evaluation, NumPy outputs for prediction."""

    __slots__ = ("function", "with_loss")

    def __init__(self, function: Any, with_loss: bool) -> None:
        self.function = function
        self.with_loss = with_loss

    def __call__(self, *args: Any) -> Any:
        from ...errors import TracingError

        try:
            result = self.function(*args)
        except TracingError as exc:
            raise TracingError(f"{exc}. (The model was compiled with jit=True; compile(..., jit=False) "
                               f"runs its steps eagerly.)") from None
        if self.with_loss:
            loss, predictions, masks = result
            return float(loss._value), with_masks(to_numpy(predictions), masks)
        return to_numpy(result)


# Sequence masks of the predictions (Embedding(mask_zero=True) and the layers after it) reach
# the metrics, which skip masked positions as the loss does. A compiled step returns Variables
# only, so its graph returns the masks beside the predictions and they are attached again here.
def output_masks(predictions: Any) -> dict[str, Variable]:
    """The masks of the outputs that carry one, keyed by the output's position."""
    outputs = predictions if isinstance(predictions, (list, tuple)) else [predictions]
    masks = {}
    for k, out in enumerate(outputs):
        mask = out.mask if out.__class__ is Variable else None
        if mask is not None:
            masks[str(k)] = mask if mask.__class__ is Variable else Variable(np.asarray(mask, bool))
    return masks


def with_masks(predictions: Any, masks: dict[str, Variable]) -> Any:
    """NumPy predictions, with the outputs named in ``masks`` as Variables carrying them."""
    if not masks:
        return predictions
    several = isinstance(predictions, list)
    outputs = list(predictions) if several else [predictions]
    for key, mask in masks.items():
        out = Variable(outputs[int(key)])
        out.mask = mask.value()
        outputs[int(key)] = out
    return outputs if several else outputs[0]


def for_metrics(predictions: Any) -> Any:
    """What the metrics see of a step's predictions: NumPy arrays, except that an output with
    a sequence mask stays a Variable carrying it (a compiled step has attached it already)."""
    if predictions.__class__ is Variable:
        return predictions if predictions.mask is not None else predictions.value()
    if isinstance(predictions, (list, tuple)):
        return [for_metrics(p) for p in predictions]
    return to_numpy(predictions)
