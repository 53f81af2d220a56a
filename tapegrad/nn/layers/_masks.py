"""Sequence masks: how layers read, check, merge and pass on ``Variable.mask``.

A mask is a bool Variable (or array) of shape ``(batch, time)``: True where a step is
real, False where it is padding. ``Embedding(mask_zero=True)`` attaches one to its
output; a layer whose class sets ``supports_masking = True`` (it keeps the time axis:
Dense, Dropout, normalisation, Add, ...) passes its input's mask on to its output
(:func:`pass_mask`, called by ``Layer.__call__``); recurrent and attention layers read
it; an explicit ``mask=`` argument wins over the input's own.

Masks are computed with ops (``not_equal``, ``logical_and``), so a compiled Function
computes them from each call's inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from ...ops.elementwise import logical_and_p, not_equal_p


def mask_of(x: Any) -> Any:
    """The mask attached to ``x``, or None."""
    return x.mask if x.__class__ is Variable else None


def merge_masks(masks: list[Any]) -> Any:
    """The AND of the masks that are not None (None if all are)."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    merged = present[0]
    for m in present[1:]:
        merged = logical_and_p.apply2(merged, m)
    return merged


def pass_mask(inputs: Any, outputs: Any) -> Any:
    """Give ``outputs`` (a Variable) the mask of ``inputs`` (the AND of the masks of a list of
    inputs), unless it has one already."""
    if outputs.__class__ is not Variable or outputs.mask is not None:
        return outputs
    if isinstance(inputs, (list, tuple)):
        mask = merge_masks([mask_of(x) for x in inputs])
    else:
        mask = mask_of(inputs)
    if mask is not None:
        outputs.mask = mask
    return outputs


def checked_mask(owner: str, mask: Any, batch: int, time: int, arg: str = "mask") -> Any:
    """A mask given by the user, as a bool Variable or array of shape ``(batch, time)``
    (numbers are True where non-zero)."""
    value = mask._value if isinstance(mask, Variable) else mask
    if isinstance(value, (list, tuple)):
        value = mask = np.asarray(value)
    if not isinstance(value, (np.ndarray, np.generic)):
        raise OpTypeError(f"{owner}: {arg} must be a bool array or Variable of shape (batch, time), "
                          f"got {type(mask).__name__}")
    if np.shape(value) != (batch, time):
        raise OpValueError(f"{owner}: {arg} has shape {np.shape(value)}, expected (batch, time) = ({batch}, {time})")
    if value.dtype.kind == "b":
        return mask
    if value.dtype.kind not in "iuf":
        raise OpTypeError(f"{owner}: {arg} must hold bools or numbers, got dtype {value.dtype}")
    return not_equal_p.apply2(mask, 0) if isinstance(mask, Variable) else value != 0


def time_concatenated_mask(inputs: list[Any]) -> Any:
    """The mask of inputs joined along the time axis: their masks joined (all True for an
    input without one), or None if none has a mask."""
    from ...ops.shape import concat_p

    masks = [mask_of(x) for x in inputs]
    if all(m is None for m in masks):
        return None
    parts = [np.ones(np.shape(x._value if isinstance(x, Variable) else x)[:2], bool) if m is None else m
             for x, m in zip(inputs, masks)]
    return concat_p.apply(*parts, axis=1)
