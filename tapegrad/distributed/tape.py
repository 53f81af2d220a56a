"""``tapegrad.distributed.GradientTape``: a GradientTape whose ``gradient`` returns the
gradients averaged over the ranks (Horovod's DistributedGradientTape).

The averaging overlaps the backward pass: the tape hands each gradient over as soon as it
is complete (:meth:`tapegrad.GradientTape.gradient_streamed`) and a bucket's allreduce
starts as soon as all of its gradients are in (:mod:`.buckets`), while backprop goes on
with the earlier layers. ``DistributedOptimizer`` recognises the gradients it returns and
does not average them again.
"""

from __future__ import annotations

from typing import Any

from ..autodiff import state as _state
from ..autodiff.tape import GradientTape as _LocalTape
from ..autodiff.tape import flatten
from ..autodiff.variable import wrap
from ..errors import TracingError
from . import buckets


class GradientTape(_LocalTape):
    """A :class:`tapegrad.GradientTape` whose :meth:`gradient` averages over the ranks.

    Every rank must call ``gradient`` with the same sources (same shapes and dtypes, same
    order): the averaging is a collective. ``weight`` (default 1) is how much this rank's
    gradients count: pass the number of samples of the rank's batch to average like one
    process over all the samples when ranks' batches differ in size. Each returned gradient
    is the average (a Variable), or None when no rank has a gradient for that source.
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True, *,
                 weight: float = 1.0, averager: buckets.GradientAverager | None = None) -> None:
        super().__init__(persistent, watch_accessed_variables)
        self.weight = float(weight)
        self._averager = averager

    def gradient(
        self,
        target: Any,
        sources: Any,
        output_gradients: Any = None,
        unconnected_gradients: str = "none",
    ) -> Any:
        """The gradient of ``target`` with respect to ``sources``, averaged over the ranks
        (same arguments and result structure as :meth:`tapegrad.GradientTape.gradient`)."""
        if _state.tracing():
            raise TracingError(
                "tapegrad.distributed.GradientTape.gradient cannot run inside a compiled Function (the averaging "
                "is communication, not part of a graph): use tapegrad.GradientTape there and "
                "tapegrad.distributed.DistributedOptimizer, which averages as an effect of the graph"
            )
        flat, rebuild = flatten(sources, "GradientTape.gradient", "sources")
        averager = self._averager or buckets.default_averager()
        step = averager.begin(flat, self.weight, "tapegrad.distributed.GradientTape.gradient")
        try:
            self.gradient_streamed(target, flat, step.put, output_gradients, unconnected_gradients)
        except BaseException:
            step.abandon()
            raise
        grads, _, _ = step.finish()
        return rebuild([None if g is None else wrap(g) for g in grads])
