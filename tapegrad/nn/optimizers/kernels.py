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
from typing import Callable, Sequence, Union

import numpy as np

from ... import native

__all__ = [
    "NATIVE_MIN",
    "adagrad_kernel",
    "adam_coefficients",
    "adam_kernel",
    "decay_kernel",
    "native_adam",
    "rmsprop_kernel",
    "sgd_kernel",
]

Grad = Union[np.ndarray, Sequence[np.ndarray]]

_multiply = np.multiply
_add = np.add
_subtract = np.subtract
_divide = np.divide
_sqrt = np.sqrt


# Buffers of fewer elements stay in NumPy: the native call saves less than it costs,
# and small models (the seed examples) then never load ctypes or build the library.
NATIVE_MIN = 4096

_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)


def native_adam(dtype: np.dtype, slot_dtype: np.dtype) -> Callable[..., None] | None:
    """The fused C Adam loop (``tapegrad.native``) for parameters of ``dtype`` with slots
    of ``slot_dtype``, or None where it does not apply or cannot be built."""
    if dtype != slot_dtype or dtype not in (_FLOAT32, _FLOAT64):
        return None
    lib = native.library()
    if lib is None:
        return None
    return lib.tg_adam_f32 if dtype == _FLOAT32 else lib.tg_adam_f64


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
    threads: int = 1,
) -> None:
    """Adam (Keras 3 formula, also AMSGrad when ``vhat`` is given).

    Keras keeps ``m = beta_1 m + (1 - beta_1) g`` and ``v = beta_2 v + (1 - beta_2) g^2``
    and updates ``p -= alpha m / (sqrt(v) + epsilon)``. This kernel keeps
    ``M = m / (1 - beta_1)`` and ``V = v / (1 - beta_2)`` instead, so that the moments
    take one multiply and one add each (``M = beta_1 M + g``), and the update is
    ``p -= scale * M / (sqrt(V) + eps)`` with the scalars of :func:`adam_coefficients`:
    the same numbers to rounding, in ten passes over the arrays (twelve for Keras's
    form). With AMSGrad, ``vhat = max(vhat, V)`` replaces ``V`` in the update.

    Arrays of at least ``NATIVE_MIN`` elements, all C-contiguous and of one float
    dtype, are updated in one pass by the C twin of this function
    (:func:`native_adam`), which gives the same bits, split over ``threads`` threads
    (the NumPy twin ignores ``threads``: the optimizer splits its work itself).
    """
    pieces = _pieces(g, p.size)
    if vhat is None and p.size >= NATIVE_MIN and _native_adam_run(p, pieces, m, v, scale, eps, beta_1, beta_2, threads):
        return
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


def _native_adam_run(
    p: np.ndarray,
    pieces: list,
    m: np.ndarray,
    v: np.ndarray,
    scale: float,
    eps: float,
    beta_1: float,
    beta_2: float,
    threads: int,
) -> bool:
    """Run :func:`adam_kernel` natively if it applies; False if not (nothing written)."""
    fn = native_adam(p.dtype, m.dtype)
    if fn is None or v.dtype != p.dtype:
        return False
    for a in (p, m, v):
        if not a.flags.c_contiguous or not a.flags.writeable:
            return False
    nbytes = p.nbytes
    pp, mp, vp = p.ctypes.data, m.ctypes.data, v.ctypes.data
    # The C loop assumes no overlap (restrict); a gradient that is a view of the
    # parameters or slots (a user passing p's own array) takes the NumPy way.
    spans = sorted([(pp, pp + nbytes), (mp, mp + nbytes), (vp, vp + nbytes)])
    if spans[0][1] > spans[1][0] or spans[1][1] > spans[2][0]:
        return False
    count = len(pieces)
    table = np.empty(2 * count + 1, np.intp)  # gradient addresses, then the piece starts
    for k, (start, _, gi) in enumerate(pieces):
        if gi.dtype != p.dtype or not gi.flags.c_contiguous:
            return False
        gp = gi.ctypes.data
        gend = gp + gi.nbytes
        for a, b in spans:
            if gp < b and a < gend:
                return False
        table[k] = gp
        table[count + k] = start
    table[2 * count] = p.size
    at = table.ctypes.data
    fn(pp, mp, vp, at, at + count * table.itemsize, count, beta_1, beta_2, scale, eps, threads)
    return True


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
