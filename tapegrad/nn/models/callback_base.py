"""The callback protocol: :class:`Callback` (every event, doing nothing) and
:class:`CallbackList`, which ``fit``, ``evaluate`` and ``predict`` use to dispatch events.
The callbacks themselves are in :mod:`tapegrad.nn.models.callbacks`; see its docstring."""

from __future__ import annotations

from typing import Any, Iterable


class Callback:
    """Base class of callbacks. Every event does nothing by default."""

    # Under mpirun, fit runs a callback with this set on rank 0 only (ModelCheckpoint):
    # see tapegrad.distributed.
    main_rank_only: bool = False

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    # fit
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called once at the start of ``fit``."""

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called once when ``fit`` ends (normally or by ``stop_training``)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of each epoch (``epoch`` is 0-based)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of each epoch with the epoch's (and validation) results."""

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before each training batch (``batch`` is 0-based within the epoch)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after each training batch with the running results of the epoch."""

    # evaluate (also the validation inside fit)
    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of ``evaluate`` and of each validation pass."""

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of ``evaluate`` and of each validation pass."""

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before each evaluation batch."""

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after each evaluation batch."""

    # predict
    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of ``predict``."""

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of ``predict``."""

    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before each prediction batch."""

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after each prediction batch."""


def _listens(callbacks: list[Callback], *names: str) -> bool:
    """Whether any callback handles one of the events ``names``: a callback may say so
    with a ``_listens_to(names)`` method, else overriding the method counts."""
    for cb in callbacks:
        ask = getattr(cb, "_listens_to", None)
        if ask is not None:
            if ask(names):
                return True
        elif any(getattr(type(cb), n) is not getattr(Callback, n) for n in names):
            return True
    return False


class CallbackList:
    """Dispatches events to a list of callbacks. ``train_batch_hooks`` (and the test and
    predict counterparts) say whether any callback listens to batch events."""

    def __init__(self, callbacks: Iterable[Callback] | None, model: Any, params: dict[str, Any]) -> None:
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks: expected Callback instances, got {type(cb).__name__}")
            cb.set_model(model)
            cb.set_params(params)
        self.train_batch_hooks = _listens(self.callbacks, "on_train_batch_begin", "on_train_batch_end")
        self.test_batch_hooks = _listens(self.callbacks, "on_test_batch_begin", "on_test_batch_end")
        self.predict_batch_hooks = _listens(self.callbacks, "on_predict_batch_begin", "on_predict_batch_end")

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def _call(self, name: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, name)(*args)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._call("on_train_begin", logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_train_batch_end", batch, logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._call("on_test_begin", logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        self._call("on_test_end", logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_test_batch_end", batch, logs)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs: dict | None = None) -> None:
        self._call("on_predict_end", logs)

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_predict_batch_end", batch, logs)
