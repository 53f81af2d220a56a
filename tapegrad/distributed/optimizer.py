"""``DistributedOptimizer(optimizer)``: averages the gradients over the ranks, then lets
the wrapped optimizer update (Horovod's DistributedOptimizer).

Gradients that are averages already -- those returned by
``tapegrad.distributed.GradientTape`` or by ``fit``'s averaging -- are recognised and
passed on as they are, so nothing is averaged twice. Other gradients are averaged in
buckets (:mod:`.buckets`): each bucket's allreduce starts as soon as its gradients are
copied in, so the copies of the next buckets overlap the sums of the first ones. Inside a
compiled Function the update (averaging included) is an effect of the graph, like a plain
optimizer's.

Everything else -- ``learning_rate``, ``iterations``, ``get_state``/``set_state``,
``get_config``, ``name`` -- is the wrapped optimizer's.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from ..autodiff import state as _state
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from . import buckets


class DistributedOptimizer:
    """Wraps an optimizer so that ``update(params, grads)`` averages ``grads`` over the
    ranks first (see the module docstring). Every rank must update the same parameters
    in the same order. ``bucket_bytes`` caps a bucket (None: automatic); ``averager``
    (a :class:`~tapegrad.distributed.GradientAverager`) replaces the shared one."""

    def __init__(self, optimizer: Any, *, bucket_bytes: int | None = None,
                 averager: buckets.GradientAverager | None = None) -> None:
        if isinstance(optimizer, DistributedOptimizer):
            raise OpTypeError("DistributedOptimizer: the optimizer is a DistributedOptimizer already")
        if not callable(getattr(optimizer, "update", None)):
            raise OpTypeError(f"DistributedOptimizer: expects an optimizer (with update(params, grads)), got "
                              f"{type(optimizer).__name__}")
        self.__dict__["optimizer"] = optimizer
        if averager is None:
            averager = buckets.default_averager() if bucket_bytes is None else buckets.GradientAverager(bucket_bytes)
        self.__dict__["_averager"] = averager

    # -- everything else is the wrapped optimizer's ------------------------------------------
    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["optimizer"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__dict__["optimizer"], name, value)

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r})"

    @property
    def averager(self) -> buckets.GradientAverager:
        return self.__dict__["_averager"]

    # -- updates ------------------------------------------------------------------------------
    def update(self, params: Sequence[Variable], grads: Sequence[Any]) -> None:
        """Average ``grads`` over the ranks (unless they are averages already), then update
        ``params`` with the wrapped optimizer."""
        if isinstance(params, Variable):
            params, grads = [params], [grads]
        params, grads = list(params), list(grads)
        optimizer = self.optimizer
        if _state.tracing():
            from ..compiler.tracing import run_effect

            kept = [(p, g) for p, g in zip(params, grads) if g is not None]
            updated = [p for p, _ in kept]
            run_effect("update", lambda *arrays: self.update(updated, list(arrays)), [g for _, g in kept],
                       f"DistributedOptimizer({type(optimizer).__name__}).update")
            return
        if len(params) != len(grads):
            raise OpValueError(f"DistributedOptimizer.update: got {len(params)} parameters but {len(grads)} "
                               f"gradients; pass one gradient (or None) per parameter")
        for i, p in enumerate(params):
            if not isinstance(p, Variable):
                raise OpTypeError(f"DistributedOptimizer.update: parameter {i} is a {type(p).__name__}, not a "
                                  f"Variable")
        if not buckets.is_averaged(grads):
            grads, _, _ = self.averager.average(params, grads, owner="DistributedOptimizer.update")
        optimizer.update(params, grads)

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> int:
        """Keras spelling: ``apply_gradients(zip(grads, params))``; returns ``iterations``."""
        pairs = list(grads_and_vars)
        if pairs:
            self.update([v for _, v in pairs], [g for g, _ in pairs])
        return self.optimizer.iterations

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Variable]) -> None:
        """Keras 3 ``apply(grads, trainable_variables)``."""
        self.update(list(trainable_variables), list(grads))

    def minimize(self, loss: Callable[[], Any], var_list: Sequence[Variable]) -> None:
        """Compute the gradients of ``loss()`` for ``var_list`` on a tape, average, apply."""
        from ..autodiff.tape import GradientTape

        var_list = list(var_list)
        with GradientTape() as tape:
            value = loss()
        self.update(var_list, tape.gradient(value, var_list))
