"""The numerical cores of the optimizers: in-place updates over raw NumPy arrays.

Each kernel updates a parameter array ``p`` and its slot arrays in place, in a few
whole-array passes with ``out=`` (no temporaries besides the scratch rows it is
given). It knows nothing of Variables, schedules, clipping or iterations: the
:class:`~tapegrad.nn.optimizers.base.Optimizer` computes the scalar coefficients of
the step (``*_coefficients``) and calls the kernel on its flat buffers, and a
compiler can call the same function as one in-place "effect" node.

Conventions shared by every kernel:

* ``p``, the slots and the scratch rows (``tmp``, ``tmp2``) are arrays of one shape,
  usually 1-D views of flat buffers that concatenate many parameters. Slots and
  scratch may have a wider float dtype than ``p`` (float32 slots for float16
  parameters); the final write into ``p`` rounds to its dtype.
* ``g`` is the gradient: an array of ``p``'s size, or a sequence of arrays laid end
  to end whose sizes add up to ``p.size`` (the gradients of the parameters that
  ``p`` concatenates, so that they need not be copied into one buffer first). Its
  dtype should be ``p``'s.
* The scalars are Python floats; they are applied in the arrays' dtype.

Every kernel computes the Keras 3 formula of its optimizer. ``sgd_kernel``,
``rmsprop_kernel`` and ``adagrad_kernel`` also keep Keras's grouping of the
operations, so their slots are Keras's. ``adam_kernel`` keeps its moments rescaled
(``m / (1 - beta_1)`` and ``v / (1 - beta_2)``), which saves two of its passes; see
its docstring.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np

__all__ = [
    "adagrad_kernel",
    "adam_coefficients",
    "adam_kernel",
    "decay_kernel",
    "rmsprop_kernel",
    "sgd_kernel",
]

Grad = Union[np.ndarray, Sequence[np.ndarray]]

_multiply = np.multiply
_add = np.add
_subtract = np.subtract
_divide = np.divide
_sqrt = np.sqrt


def _pieces(g: Grad, n: int) -> list[tuple[int, int, np.ndarray]]:
    """``g`` as a list of ``(start, stop, 1-D array)``, the offsets into ``p``."""
    if isinstance(g, np.ndarray):
        if g.size != n:
            raise ValueError(f"the gradient holds {g.size} elements, but the parameters hold {n}")
        return [(0, n, g.reshape(-1) if g.ndim != 1 else g)]
    out = []
    start = 0
    for gi in g:
        gi = np.asarray(gi)
        stop = start + gi.size
        out.append((start, stop, gi.reshape(-1) if gi.ndim != 1 else gi))
        start = stop
    if start != n:
        raise ValueError(f"the gradient pieces hold {start} elements, but the parameters hold {n}")
    return out


def _product(pieces: list, out: np.ndarray, factor: float | None = None) -> None:
    """``out = g * g`` (``factor`` None) or ``out = g * factor``, piece by piece."""
    if factor is None:
        for start, stop, gi in pieces:
            _multiply(gi, gi, out=out[start:stop])
    else:
        for start, stop, gi in pieces:
            _multiply(gi, factor, out=out[start:stop])


def sgd_kernel(
    p: np.ndarray,
    g: Grad,
    momentum_slot: np.ndarray | None,
    tmp: np.ndarray,
    tmp2: np.ndarray | None,
    lr: float,
    momentum: float,
    nesterov: bool,
) -> None:
    """Keras SGD. Without momentum: ``p -= lr * g``. With momentum ``mu``:
    ``m = -lr * g + mu * m``, then ``p += m``, or with ``nesterov``
    ``p += -lr * g + mu * m`` (the new ``m``). ``tmp2`` is needed for nesterov."""
    pieces = _pieces(g, p.size)
    _product(pieces, tmp, lr)  # tmp = lr * g
    if momentum_slot is None:
        _subtract(p, tmp, out=p)
        return
    m = momentum_slot
    _multiply(m, momentum, out=m)
    _subtract(m, tmp, out=m)
    if nesterov:
        _multiply(m, momentum, out=tmp2)
        _subtract(tmp2, tmp, out=tmp2)
        _add(p, tmp2, out=p)
    else:
        _add(p, m, out=p)


def adam_coefficients(
    lr: float, step: int, beta_1: float, beta_2: float, epsilon: float
) -> tuple[float, float]:
    """The scalars of :func:`adam_kernel` for the update number ``step`` (0 for the
    first update): ``(alpha * (1 - beta_1) / sqrt(1 - beta_2), epsilon / sqrt(1 - beta_2))``
    with Keras's ``alpha = lr * sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)``, ``t = step + 1``."""
    t = step + 1
    alpha = lr * math.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)
    root = math.sqrt(1.0 - beta_2)
    return alpha * (1.0 - beta_1) / root, epsilon / root


def adam_kernel(
    p: np.ndarray,
    g: Grad,
    m: np.ndarray,
    v: np.ndarray,
    vhat: np.ndarray | None,
    tmp: np.ndarray,
    scale: float,
    eps: float,
    beta_1: float,
    beta_2: float,
) -> None:
    """Adam (Keras 3 formula, also AMSGrad when ``vhat`` is given).

    Keras keeps ``m = beta_1 m + (1 - beta_1) g`` and ``v = beta_2 v + (1 - beta_2) g^2``
    and updates ``p -= alpha m / (sqrt(v) + epsilon)``. This kernel keeps
    ``M = m / (1 - beta_1)`` and ``V = v / (1 - beta_2)`` instead, so that the moments
    take one multiply and one add each (``M = beta_1 M + g``), and the update is
    ``p -= scale * M / (sqrt(V) + eps)`` with the scalars of :func:`adam_coefficients`:
    the same numbers to rounding, in ten passes over the arrays (twelve for Keras's
    form). With AMSGrad, ``vhat = max(vhat, V)`` replaces ``V`` in the update.
    """
    pieces = _pieces(g, p.size)
    _multiply(m, beta_1, out=m)
    for start, stop, gi in pieces:
        ms = m[start:stop]
        _add(ms, gi, out=ms)
        _multiply(gi, gi, out=tmp[start:stop])
    _multiply(v, beta_2, out=v)
    _add(v, tmp, out=v)
    if vhat is not None:
        np.maximum(vhat, v, out=vhat)
        v = vhat
    _sqrt(v, out=tmp)
    _add(tmp, eps, out=tmp)
    _divide(m, tmp, out=tmp)
    _multiply(tmp, scale, out=tmp)
    _subtract(p, tmp, out=p)


def rmsprop_kernel(
    p: np.ndarray,
    g: Grad,
    velocity: np.ndarray,
    momentum_slot: np.ndarray | None,
    average: np.ndarray | None,
    tmp: np.ndarray,
    tmp2: np.ndarray,
    lr: float,
    rho: float,
    momentum: float,
    epsilon: float,
) -> None:
    """Keras RMSprop: ``v = rho v + (1 - rho) g^2``; centered (``average`` given):
    ``a = rho a + (1 - rho) g`` and ``d = v - a^2 + epsilon``, else ``d = v + epsilon``;
    ``inc = lr g / sqrt(d)``; with momentum ``mom = momentum * mom + inc`` and
    ``p -= mom``, else ``p -= inc``. (Epsilon is inside the square root, unlike torch.)"""
    pieces = _pieces(g, p.size)
    _product(pieces, tmp)
    _multiply(tmp, 1.0 - rho, out=tmp)
    _multiply(velocity, rho, out=velocity)
    _add(velocity, tmp, out=velocity)
    if average is not None:
        _product(pieces, tmp, 1.0 - rho)
        _multiply(average, rho, out=average)
        _add(average, tmp, out=average)
        _multiply(average, average, out=tmp)
        _subtract(velocity, tmp, out=tmp)
        _add(tmp, epsilon, out=tmp)
    else:
        _add(velocity, epsilon, out=tmp)
    _sqrt(tmp, out=tmp)
    _product(pieces, tmp2, lr)
    _divide(tmp2, tmp, out=tmp)
    if momentum_slot is not None:
        _multiply(momentum_slot, momentum, out=momentum_slot)
        _add(momentum_slot, tmp, out=momentum_slot)
        _subtract(p, momentum_slot, out=p)
    else:
        _subtract(p, tmp, out=p)


def adagrad_kernel(
    p: np.ndarray,
    g: Grad,
    accumulator: np.ndarray,
    tmp: np.ndarray,
    tmp2: np.ndarray,
    lr: float,
    epsilon: float,
) -> None:
    """Keras Adagrad: ``acc += g^2``; ``p -= lr g / sqrt(acc + epsilon)`` (epsilon inside
    the square root, unlike torch)."""
    pieces = _pieces(g, p.size)
    _product(pieces, tmp)
    _add(accumulator, tmp, out=accumulator)
    _add(accumulator, epsilon, out=tmp)
    _sqrt(tmp, out=tmp)
    _product(pieces, tmp2, lr)
    _divide(tmp2, tmp, out=tmp)
    _subtract(p, tmp, out=p)


def decay_kernel(p: np.ndarray, factor: float) -> None:
    """Decoupled weight decay ``p *= factor`` with ``factor = 1 - lr * weight_decay``
    (torch's AdamW form of Keras's ``p - p * weight_decay * lr``)."""
    _multiply(p, factor, out=p)
