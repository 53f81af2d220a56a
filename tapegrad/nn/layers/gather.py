"""Gather: Rindow's gather layer (``$nn->layers->Gather(axis:..., batchDims:...)``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import OpTypeError, OpValueError
from ...ops.nn_ops import gatherb_p
from .. import hyperparams
from ._util import integer_indices, owner, shape_list, value_of
from .base import Layer
from .merging import _multi_input_kwargs


class Gather(Layer):
    """Gather slices of the first input (``params``) at the integer indices given as the
    second input (``indices``): ``Gather(axis=None, batch_dims=None, detail_depth=None,
    index_depth=None)([params, indices])``.

    Rindow's semantics (a generalised ``tf.gather`` in which the batch axis of both inputs
    is always a shared batch axis). Axes count in the sample shapes (batch axis excluded).
    With ``params`` of sample shape ``S`` and ``indices`` of sample shape ``I``:

    * ``batch_dims`` (default 0): the first ``batch_dims`` axes are shared by both inputs
      (``S[:batch_dims] == I[:batch_dims]``);
    * ``axis`` (default ``batch_dims``): the axis of ``params`` that is indexed;
    * ``detail_depth`` (default ``axis + 1``): axes ``axis+1 .. detail_depth-1`` of
      ``params`` are "inner" axes, matched elementwise by the last axes of ``indices``
      (``I[index_depth:] == S[axis+1:detail_depth]``); axes from ``detail_depth`` on are
      copied whole;
    * ``index_depth`` (default ``len(I)``): where the index axes of ``indices`` end.

    The output sample shape is ``batch + outer + index + inner + detail`` with ``batch =
    S[:batch_dims]``, ``outer = S[batch_dims:axis]``, ``index = I[batch_dims:index_depth]``,
    ``inner = S[axis+1:detail_depth]``, ``detail = S[detail_depth:]``, and::

        out[b, bt, o, i, n, d] = params[b, bt, o, indices[b, bt, i, n], n, d]

    Examples: ``params (B, 10)``, ``indices (B,)`` -> ``(B,)``, the chosen element of each
    row; ``params (B, 5, 10)``, ``indices (B, 5)`` with ``batch_dims=1`` -> ``(B, 5)``
    (take along the last axis). Gradients flow to ``params`` (summed over repeated
    indices); ``indices`` are constants.
    """

    def __init__(
        self,
        axis: int | None = None,
        batch_dims: int | None = None,
        detail_depth: int | None = None,
        index_depth: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**_multi_input_kwargs(kwargs))
        for arg, value in (("axis", axis), ("batch_dims", batch_dims), ("detail_depth", detail_depth),
                           ("index_depth", index_depth)):
            if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)):
                raise OpTypeError(f"{owner(self)}: {arg} must be an int or None, got {hyperparams.show(value)}")

        def checked(arg: str, value: Any) -> int | None:
            return None if value is None else hyperparams.axis(owner(self), arg, value)

        self.axis = checked("axis", axis)
        self.batch_dims = checked("batch_dims", batch_dims)
        self.detail_depth = checked("detail_depth", detail_depth)
        self.index_depth = checked("index_depth", index_depth)
        self._dims: tuple[int, int, int, int] | None = None

    def _resolve(self, params_shape: tuple, index_shape: tuple) -> tuple[tuple, tuple[int, int, int, int]]:
        """(output sample shape, (batch_dims, axis, detail_depth, index_depth))."""
        ns, ni = len(params_shape), len(index_shape)
        bd = 0 if self.batch_dims is None else self.batch_dims
        bd = bd + ns if bd < 0 else bd
        if not 0 <= bd < ns:
            raise OpValueError(f"{self.name}: batch_dims {self.batch_dims} must be less than the rank {ns} of "
                               f"params samples {params_shape}")
        axis = bd if self.axis is None else self.axis
        axis = axis + ns if axis < 0 else axis
        if not 0 <= axis < ns:
            raise OpValueError(f"{self.name}: axis {self.axis} is out of range for params samples of shape "
                               f"{params_shape}")
        dd = axis + 1 if self.detail_depth is None else self.detail_depth
        dd = dd + ns if dd < 0 else dd
        if not axis < dd <= ns:
            raise OpValueError(f"{self.name}: detail_depth {self.detail_depth} must be in ({axis}, {ns}] for "
                               f"params samples of shape {params_shape}")
        idd = ni if self.index_depth is None else self.index_depth
        idd = idd + ni if idd < 0 else idd
        if not 0 <= idd <= ni:
            raise OpValueError(f"{self.name}: index_depth {self.index_depth} is out of range for indices "
                               f"samples of shape {index_shape}")
        if bd > axis and axis == 0:
            bd = 0  # as Rindow: an explicit axis 0 overrides the default batch_dims
        if bd > axis:
            raise OpValueError(f"{self.name}: batch_dims {bd} must not exceed axis {axis}")
        if bd > idd:
            raise OpValueError(f"{self.name}: batch_dims {bd} must not exceed index_depth {idd}")
        batch, outer = params_shape[:bd], params_shape[bd:axis]
        inner, detail = params_shape[axis + 1:dd], params_shape[dd:]
        if not _same(index_shape[:bd], batch):
            raise OpValueError(f"{self.name}: the batch axes of params {params_shape} and indices {index_shape} "
                               f"differ: {batch} != {index_shape[:bd]}")
        if not _same(index_shape[idd:], inner):
            raise OpValueError(f"{self.name}: the inner axes of params {params_shape} ({inner}) and of indices "
                               f"{index_shape} ({index_shape[idd:]}) differ")
        out = batch + outer + index_shape[bd:idd] + inner + detail
        return out, (bd, axis, dd, idd)

    def build(self, input_shape: Any) -> None:
        params_shape, index_shape = shape_list(self, input_shape, exactly=2)
        self.output_shape, self._dims = self._resolve(params_shape, index_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        params_shape, index_shape = shape_list(self, input_shape, exactly=2)
        return self._resolve(params_shape, index_shape)[0]

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        params, indices = inputs
        indices = integer_indices(self, indices)
        idx = value_of(indices)
        bd, axis, dd, idd = self._dims
        pshape = np.shape(value_of(params))
        n = pshape[1 + axis]
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = idx.min() if idx.min() < 0 else idx.max()
            raise OpValueError(f"{self.name}: index {bad} is out of range [0, {n}) for axis {axis} of params "
                               f"samples of shape {pshape[1:]}")
        # The batch axis is a shared batch axis too.
        return gatherb_p.apply(params, indices, batch=1 + bd, outer=axis - bd, inner=dd - axis - 1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(axis=self.axis, batch_dims=self.batch_dims, detail_depth=self.detail_depth,
                      index_depth=self.index_depth)
        return config


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))
