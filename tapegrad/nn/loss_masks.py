"""Masked predictions in losses and metrics (Keras semantics).

When the predictions carry a sequence mask (``predicts.mask``, e.g. from an
``Embedding(mask_zero=True)`` through layers that keep the time axis), the positions
where it is False are skipped:

* a loss multiplies its per-sample values by the mask (and ``sample_weight``): ``"none"``
  gives zeros there, ``"sum"`` sums the others, and ``"mean"`` divides that sum by the
  number of unmasked positions (Keras divides by it plus 1e-7; a fully masked batch gives
  0 here, not 0/1e-7);
* a metric averages over the unmasked positions only.

The mask must have the shape of the per-sample values (``(batch, time)`` for
predictions of shape ``(batch, time, classes)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff.variable import Variable, wrap
from ..errors import OpValueError
from ..ops.constant import cast_p
from ..ops.elementwise import div_p, maximum_p, mul_p
from ..ops.reduction import reduce_sum_p


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(x._value if isinstance(x, Variable) else x)


def masked_reduction(op: str, values: Any, mask: Any, reduction: str) -> Variable:
    """A loss's per-sample ``values`` (weighted already) reduced over the positions ``mask``
    keeps: ``"none"`` zeroes the others, ``"sum"`` sums the kept ones, ``"mean"`` averages them."""
    if values.__class__ is not Variable:
        values = wrap(np.asarray(values))
    vs, ms = values._value.shape, _shape(mask)
    if vs != ms:
        raise OpValueError(f"{op}: the predictions' mask has shape {ms}, but the per-sample losses have shape "
                           f"{vs}; a mask must cover the positions the loss is computed for")
    weights = cast_p.apply(mask, dtype=values._value.dtype)
    values = mul_p.apply2(values, weights)
    if reduction == "none":
        return values
    total = reduce_sum_p.apply(values, axis=None, keepdims=False)
    if reduction == "sum":
        return total
    count = reduce_sum_p.apply(weights, axis=None, keepdims=False)
    return div_p.apply2(total, maximum_p.apply2(count, 1.0))


def masked_metric_values(op: str, values: np.ndarray, sample_weight: Any, mask: Any) -> tuple[np.ndarray, Any]:
    """The per-sample metric values (and weights) at the unmasked positions, flattened."""
    m = np.asarray(mask._value if isinstance(mask, Variable) else mask, dtype=bool)
    if values.shape != m.shape:
        raise OpValueError(f"{op}: the predictions' mask has shape {m.shape}, but the metric's per-sample values "
                           f"have shape {values.shape}")
    if sample_weight is not None:
        w = np.asarray(sample_weight._value if isinstance(sample_weight, Variable) else sample_weight, np.float64)
        w = w.reshape(w.shape + (1,) * (values.ndim - w.ndim)) if w.ndim < values.ndim else w
        try:
            sample_weight = np.broadcast_to(w, values.shape)[m]
        except ValueError:
            raise OpValueError(f"{op}: sample_weight of shape {w.shape} does not fit the per-sample values of shape "
                               f"{values.shape}") from None
    return values[m], sample_weight
