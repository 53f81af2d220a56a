"""One time step of the LSTM and GRU (``reset_after``) cells in float32: the gate
nonlinearities and the state update in one pass, forward and backward.

Each step function exists twice: in C (``tapegrad/native/recurrent_kernels.c``, one
vectorised loop) and here in NumPy (the twin, some forty whole-array passes). The loops
of :mod:`tapegrad.ops.recurrent_kernels` call the C function when the native library is
loaded and the NumPy twin otherwise; both give the same bits, because neither uses a
library's exp or tanh (whose bits differ between NumPy's SIMD loops, libm and CPUs):
:func:`exp32` and :func:`tanh32` are written with + - * / and selects only, in the same
order in both twins (see the C file for the method; at most ~1.3 ulp from exp and tanh,
as close as NumPy's own float32 functions). Other dtypes keep the NumPy loops of
:mod:`tapegrad.ops.recurrent_kernels`.

Arrays are C-contiguous float32 (``a``, ``rec``, ``d``, ``du``: ``(rows, gates * units)``;
the states and their cotangents ``(rows, units)``); ``keep`` is None or a float32 ``(rows,)``
array of 1 (a real step) and 0 (a masked step).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import native

__all__ = ["exp32", "sigmoid32", "tanh32", "available", "bind", "NUMPY_STEPS"]

_f = np.float32
EXP_MAX, EXP_MIN = _f(88.3), _f(-87.3)  # the result stays a normal float
LOG2E, ROUND_SHIFT = _f(1.44269504), _f(12582912.0)  # 1.5 * 2^23: adding it rounds to an integer
LN2_HI, LN2_LO = _f(0.693359375), _f(-2.12194440e-4)
EXP_POLY = tuple(_f(c) for c in (0.5, 0.16666576266288757, 0.04166646674275398, 0.008363175205886364,
                                 0.0013933643931522965))
TANH_SMALL = _f(0.625)
TANH_POLY = tuple(_f(c) for c in (-0.333333283662796, 0.13332782685756683, -0.05385249853134155,
                                  0.021003641188144684, -0.006104947999119759))
ONE, TWO = _f(1.0), _f(2.0)


def exp32(x: np.ndarray) -> np.ndarray:
    """exp of a float32 array, as ``tg_exp32`` in C computes it (same bits). In place
    on new arrays: each step is one rounded operation, in C's order."""
    t = np.minimum(x, EXP_MAX)
    np.maximum(t, EXP_MIN, out=t)
    n = t * LOG2E
    n += ROUND_SHIFT
    n -= ROUND_SHIFT  # n = round(x / ln 2)
    r = n * LN2_HI
    np.subtract(t, r, out=r)
    np.multiply(n, LN2_LO, out=t)
    r -= t  # r = (x - n ln2_hi) - n ln2_lo
    p = r * EXP_POLY[4]
    for c in EXP_POLY[3:0:-1]:
        p += c
        p *= r
    p += EXP_POLY[0]
    np.multiply(r, r, out=t)
    p *= t
    p += r
    p += ONE  # (p r^2 + r) + 1
    with np.errstate(invalid="ignore"):  # NaN: any scale, the result is NaN
        bits = n.astype(np.int32).view(np.uint32)
    bits += np.uint32(127)
    bits <<= np.uint32(23)
    p *= bits.view(np.float32)  # times 2^n
    return p


def sigmoid32(z: np.ndarray) -> np.ndarray:
    e = exp32(-z)
    e += ONE
    return np.divide(ONE, e, out=e)


def tanh32(x: np.ndarray) -> np.ndarray:
    """tanh of a float32 array, as ``tg_tanh32`` in C computes it (same bits)."""
    a = np.abs(x)
    small = a < TANH_SMALL
    s = x * x
    p = s * TANH_POLY[4]
    for c in TANH_POLY[3:0:-1]:
        p += c
        p *= s
    p += TANH_POLY[0]
    with np.errstate(invalid="ignore"):  # inf * 0 in the branch that is not taken
        p *= s
        p += ONE
        p *= x  # x (1 + s Q(s))
    a += a
    big = exp32(a)
    big += ONE
    np.divide(TWO, big, out=big)
    np.subtract(ONE, big, out=big)
    np.copysign(big, x, out=big)  # C's x < 0 ? -big : big (they differ only for x = -0, where small wins, and NaN)
    return np.where(small, p, big)


def lstm_step(a: np.ndarray, rec: np.ndarray, bias: np.ndarray, c_prev: np.ndarray, c_new: np.ndarray,
              tc: np.ndarray, h_new: np.ndarray) -> None:
    """``a <- activations((a + rec) + bias)`` (gates i, f, c, o), ``c_new = f c_prev + i g``,
    ``tc = tanh(c_new)``, ``h_new = o tc``."""
    U = c_prev.shape[1]
    z = a + rec
    z += bias
    act = sigmoid32(z)  # all four blocks at once (fewer NumPy calls); the c block is replaced
    i, f, o = act[:, :U], act[:, U:2 * U], act[:, 3 * U:]
    g = act[:, 2 * U:3 * U]
    g[...] = tanh32(z[:, 2 * U:3 * U])
    c = f * c_prev + i * g
    t = tanh32(c)
    a[...] = act
    c_new[...] = c
    tc[...] = t
    np.multiply(o, t, out=h_new)


def lstm_step_grad(a: np.ndarray, tc: np.ndarray, c_prev: np.ndarray, dh: np.ndarray, dc: np.ndarray,
                   d: np.ndarray, keep: np.ndarray | None) -> None:
    """``d`` = the cotangents of the pre-activations; ``dc <-`` the cotangent of ``c_prev``."""
    U = c_prev.shape[1]
    i, f, g, o = a[:, :U], a[:, U:2 * U], a[:, 2 * U:3 * U], a[:, 3 * U:]
    m = ONE if keep is None else keep[:, None]
    dct = dc + ((ONE - tc * tc) * o) * dh
    d[:, :U] = ((dct * g) * ((ONE - i) * i)) * m
    d[:, U:2 * U] = ((dct * c_prev) * ((ONE - f) * f)) * m
    d[:, 2 * U:3 * U] = ((dct * i) * ((ONE - g) * (g + ONE))) * m
    d[:, 3 * U:] = ((dh * tc) * ((ONE - o) * o)) * m
    dc[...] = dct * f if keep is None else np.where(keep[:, None] == 0, dc, dct * f)


def gru_step(a: np.ndarray, rec: np.ndarray, bias: np.ndarray, rbias: np.ndarray, uh: np.ndarray,
             h_prev: np.ndarray, h_new: np.ndarray) -> None:
    """``a <- (z, r, hh)``: ``z = sigmoid((a_z + rec_z) + bias_z)`` (the same for r),
    ``uh = u = rec_h + rbias``, ``hh = tanh((a_h + bias_h) + r u)``; ``h_new = (h_prev - hh) z + hh``.
    ``bias`` holds the input and recurrent biases summed for z and r, the input bias for h."""
    U = h_prev.shape[1]
    zr = a[:, :2 * U] + rec[:, :2 * U]
    zr += bias[:2 * U]
    zr = sigmoid32(zr)
    z, r = zr[:, :U], zr[:, U:]
    u = rec[:, 2 * U:] + rbias
    hh = tanh32((a[:, 2 * U:] + bias[2 * U:]) + r * u)
    a[:, :U], a[:, U:2 * U], a[:, 2 * U:] = z, r, hh
    uh[...] = u
    h_new[...] = (h_prev - hh) * z + hh


def gru_step_grad(a: np.ndarray, uh: np.ndarray, h_prev: np.ndarray, dh: np.ndarray, d: np.ndarray, du: np.ndarray,
                  carry: np.ndarray, keep: np.ndarray | None) -> None:
    """``d``, ``du``: the cotangents of the input pre-activations and of ``h_prev R + b_rec``;
    ``carry``: ``dh z`` (``dh`` on a masked step), the rest of ``h_prev``'s cotangent."""
    U = h_prev.shape[1]
    z, r, hh = a[:, :U], a[:, U:2 * U], a[:, 2 * U:]
    m = ONE if keep is None else keep[:, None]
    dz = ((((h_prev - hh) * dh) * z) * (ONE - z)) * m
    dhh = ((dh * (ONE - z)) * (ONE - hh * hh))
    dr = (((dhh * uh) * r) * (ONE - r)) * m
    dhh = dhh * m
    d[:, :U], d[:, U:2 * U], d[:, 2 * U:] = dz, dr, dhh
    du[:, :U], du[:, U:2 * U] = dz, dr
    np.multiply(dhh, r, out=du[:, 2 * U:])
    carry[...] = dh * z if keep is None else np.where(keep[:, None] == 0, dh, dh * z)


NUMPY_STEPS: dict[str, Callable[..., None]] = {
    "lstm": lstm_step, "lstm_grad": lstm_step_grad, "gru": gru_step, "gru_grad": gru_step_grad,
}
_C_NAMES = {"lstm": "tg_lstm_step_f32", "lstm_grad": "tg_lstm_step_grad_f32", "gru": "tg_gru_step_f32",
            "gru_grad": "tg_gru_step_grad_f32"}


def available(dtype: Any) -> bool:
    """Whether the fused cell steps run for ``dtype`` (float32: in C or as the NumPy twin)."""
    return np.dtype(dtype) == np.float32


def bind(name: str, *args: Any, rows: int, units: int) -> Callable[[int], None]:
    """The step ``name`` (``"lstm"``, ``"lstm_grad"``, ``"gru"``, ``"gru_grad"``) bound to its
    arrays: ``step(t)`` runs it on ``x[t]`` for each argument ``x`` given as ``(x,)`` (one
    array per time step) and on ``x`` itself otherwise (None: no ``keep``). It calls C when
    the native library is loaded (with the addresses computed once), else the NumPy twin."""
    lib = native.library()
    if lib is None:
        numpy_step = NUMPY_STEPS[name]
        return lambda t: numpy_step(*[x[0][t] if isinstance(x, tuple) else x for x in args])
    fn = getattr(lib, _C_NAMES[name])
    bases, strides = [], []
    for x in args:
        per_step = isinstance(x, tuple)
        array = x[0] if per_step else x
        if array is not None and (array.dtype != np.float32 or not array.flags.c_contiguous):
            raise AssertionError(f"recurrent cell step {name}: arrays must be C-contiguous float32, got "
                                 f"{array.dtype} of strides {array.strides}")
        bases.append(None if array is None else array.ctypes.data)
        strides.append(array.strides[0] if per_step else 0)
    # The C function gets raw addresses: the closures hold the arrays too, so that none of
    # them (a temporary of the caller) is freed and its memory reused while steps still run.
    alive = args
    if all(s == 0 for s in strides):
        return lambda t, alive=alive: fn(*bases, rows, units)
    pairs = list(zip(bases, strides))
    return lambda t, alive=alive: fn(*[b if b is None else b + t * s for b, s in pairs], rows, units)

