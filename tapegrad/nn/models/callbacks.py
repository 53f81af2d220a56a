"""Callbacks: hooks into ``fit``, ``evaluate`` and ``predict`` (Keras / Rindow events).

A callback subclasses :class:`Callback` and overrides the events it needs; ``fit`` sets
``callback.model`` and ``callback.params`` (``epochs``, ``steps``, ``verbose``, ...).
``logs`` dicts hold Python floats: at batch ends the running means of the epoch so far
(``"loss"`` and the metrics), at epoch ends the epoch's values plus ``"val_..."`` ones.
Setting ``model.stop_training = True`` ends ``fit`` after the current batch.

Batch events cost time on every step, so ``fit`` only computes batch logs when some
callback overrides a batch event.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Callable

import numpy as np

from .callback_base import Callback, CallbackList
from .history import History  # noqa: F401 - Keras has History among the callbacks
from .saving import check_extension


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``.
    Any event name of :class:`Callback` may be given."""

    def __init__(self, **events: Callable[..., Any]) -> None:
        super().__init__()
        for name, fn in events.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise TypeError(f"LambdaCallback: unknown event {name!r}")
            setattr(self, name, fn)
        self._events = set(events)

    def _listens_to(self, names: tuple[str, ...]) -> bool:
        return any(n in self._events for n in names)


def _monitor_mode(monitor: str, mode: str, who: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    if any(k in name for k in ("acc", "auc", "precision", "recall", "f1", "fmeasure")):
        return "max"
    return "min"


def _value(logs: dict[str, Any] | None, monitor: str, who: str) -> float | None:
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(f"{who}: the monitored quantity {monitor!r} is not in the logs "
                      f"(available: {', '.join(sorted(logs or {}))}); skipping", RuntimeWarning, stacklevel=3)
        return None
    return float(value)


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs (Keras 3
    semantics). An improvement is a change by more than ``min_delta`` in the direction of
    ``mode`` (``"auto"``: max for accuracies, min otherwise). With
    ``restore_best_weights`` the weights of the best epoch are put back when training
    ends. ``baseline``: stop unless the model beats it; ``start_from_epoch``: ignore the
    first epochs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.monitor = monitor
        self.mode = _monitor_mode(monitor, mode, "EarlyStopping")
        self.min_delta = abs(float(min_delta))
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float = math.inf if self.mode == "min" else -math.inf
        self.best_weights: list[np.ndarray] | None = None
        self.best_epoch = 0

    def _is_improvement(self, value: float, reference: float) -> bool:
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        current = _value(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # until something is better
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, float(self.baseline)):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) during training.

    ``filepath`` may hold ``str.format`` fields: ``{epoch}`` (1-based) and any log key,
    e.g. ``"ckpt-{epoch:02d}-{val_loss:.2f}.tgm"``. With ``save_best_only`` a file is only
    written when ``monitor`` improves on the best value so far (or on
    ``initial_value_threshold``). ``save_freq="epoch"`` saves at epoch ends; an int saves
    every that many batches. Every write is atomic (see :mod:`tapegrad.io`). Under
    ``mpirun`` only rank 0 writes."""

    main_rank_only = True

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__()
        self.filepath = os.fspath(filepath)
        # refused now, not at the end of the first epoch, after that epoch's training time
        check_extension(self.filepath, "ModelCheckpoint")
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.mode = _monitor_mode(monitor, mode, "ModelCheckpoint")
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        self.save_freq = save_freq
        if initial_value_threshold is not None:
            self.best = float(initial_value_threshold)
        else:
            self.best = math.inf if self.mode == "min" else -math.inf
        self.saved: list[str] = []  # the paths written, in order
        self._epoch = 0
        self._batches = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches % int(self.save_freq) == 0:
            self._save(self._epoch, logs, batch=batch)

    def _listens_to(self, names: tuple[str, ...]) -> bool:
        # batch events only matter with an int save_freq
        return "on_train_batch_end" in names and self.save_freq != "epoch"

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, logs)

    def _format(self, epoch: int, logs: dict[str, Any], batch: int | None) -> str:
        fields = dict(logs)
        fields["epoch"] = epoch + 1
        if batch is not None:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except KeyError as exc:
            raise KeyError(f"ModelCheckpoint: filepath {self.filepath!r} uses {{{exc.args[0]}}}, which is not "
                           f"in the logs (available: epoch, {', '.join(sorted(logs))})") from None

    def _save(self, epoch: int, logs: dict[str, Any] | None, batch: int | None = None) -> None:
        logs = dict(logs or {})
        path = self._format(epoch, logs, batch)
        if self.save_best_only:
            current = _value(logs, self.monitor, "ModelCheckpoint")
            if current is None:
                return
            better = current < self.best if self.mode == "min" else current > self.best
            if not better:
                if self.verbose:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
        elif self.verbose:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        self.saved.append(path)


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of every epoch to
    ``schedule(epoch, lr)`` (or ``schedule(epoch)``), ``epoch`` 0-based and ``lr`` the
    current rate. The rate used is added to the epoch logs as ``"learning_rate"``."""

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _current(self) -> float:
        opt = self.model.optimizer
        lr = opt.learning_rate
        if callable(lr):
            lr = lr(int(getattr(opt, "iterations", 0)))
        return float(lr)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        opt = getattr(self.model, "optimizer", None)
        if opt is None or not hasattr(opt, "learning_rate"):
            raise ValueError("LearningRateScheduler: the model's optimizer has no learning_rate attribute")
        lr = self._current()
        try:
            new = self.schedule(epoch, lr)
        except TypeError:  # a schedule of the epoch only
            new = self.schedule(epoch)
        try:
            new = float(new)
        except (TypeError, ValueError):
            raise ValueError(f"LearningRateScheduler: the schedule must return a number, got {new!r}") from None
        if not math.isfinite(new):
            raise ValueError(f"LearningRateScheduler: the schedule returned {new} at epoch {epoch}")
        opt.learning_rate = new
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self._current()


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    ``fit`` checks every batch's loss itself and never applies an update computed from a
    non-finite loss. Without this callback it then raises
    :class:`~tapegrad.nn.models.NonFiniteLossError`; with it, ``fit`` stops gracefully
    instead: this callback prints which epoch and batch had the invalid loss, and
    ``fit`` returns the History of the completed epochs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._epoch = 0
        self.stopped: tuple[int, int] | None = None  # (epoch, batch), 0-based

    def _listens_to(self, names: tuple[str, ...]) -> bool:
        return False  # fit calls on_train_batch_end itself when a loss is not finite

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stopped = (self._epoch, batch)
            print(f"Epoch {self._epoch + 1}, batch {batch + 1}: invalid loss ({float(loss)}), terminating training")
            self.model.stop_training = True


__all__ = [
    "Callback", "CallbackList", "EarlyStopping", "LambdaCallback", "LearningRateScheduler", "ModelCheckpoint",
    "TerminateOnNaN",
]
