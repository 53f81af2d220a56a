"""NumPy loops of the fused recurrent primitives (see :mod:`tapegrad.ops.recurrent`).

One call runs a whole layer over the sequence: the input projection of all time steps
as one matrix product, then per step one product of the previous state with the
recurrent kernel (all gates at once) and a few whole-array passes for the gates. The
backward pass (backpropagation through time) is one reversed loop of the same kind,
followed by one product per weight gradient.

Shapes: ``x`` is ``(batch, time, features)``; ``W`` is ``(features, G)``, ``R`` is
``(units, G)`` with ``G = gates * units`` in Keras's gate order (LSTM i, f, c, o; GRU
z, r, h; SimpleRNN one block). The loops run time-major, in processing order (reversed
for ``go_backwards``), and return the states in that order: ``(time, batch, units)``,
or ``(2, time, batch, units)`` (hidden and cell states) for the LSTM; with ``last`` only the
final hidden state ``(batch, units)`` (what a layer without ``return_sequences`` needs: its
cotangent is then one array, not a mostly zero one for every step).

Optional inputs (None when absent):

* ``b``: the bias, ``(G,)``; GRU with ``reset_after``: ``(2, G)``, input then recurrent bias;
* ``h0``/``c0``: initial states ``(batch, units)`` (zeros when absent);
* ``mask``: ``(batch, time)`` bool, False where a step is padding: the states are held
  over it (Keras's semantics);
* ``in_drop``: input dropout masks ``(batch, k, features)``, already scaled by
  ``1/(1-rate)``; ``k`` is 1 (one mask for all gates) or the number of gates (Keras's
  per-gate masks when recurrent dropout is on);
* ``rec_drop``: recurrent dropout masks ``(batch, k, units)``, the same way.

The forward returns its result as a view into one workspace array that also holds what
the backward needs (gate activations, all states). :func:`workspace_of` finds it again
from the result; a result that is not such a view (copied by someone) is recomputed.
The sigmoid gates' pre-activations are kept negated (the kernels and bias are multiplied
by -1 on those columns once per call), so a sigmoid is ``1 / (1 + exp(.))`` in three
in-place passes: NumPy's float32 exp is twice as fast as its tanh.

In float32, the LSTM and the GRU with ``reset_after`` run the loops of
:func:`lstm_forward_fused` and the like instead (at the end of this module): the same
products, with each step's gate work as one fused pass (:mod:`tapegrad.ops.recurrent_cells`,
in C where the native library is loaded). Other dtypes and cells keep the other loops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..native import memory
from . import recurrent_cells as cells

RETAIN_MIN = 1 << 18  # elements of a workspace from which freed memory is kept mapped

# -------------------------------------------------------------------------------------
# Shared pieces: the input projection and its gradients, dropout on the recurrent path.
# -------------------------------------------------------------------------------------


def time_major(x: np.ndarray, reverse: bool) -> np.ndarray:
    """``(batch, time, f)`` as a ``(time, batch, f)`` view in processing order."""
    xt = x.transpose(1, 0, 2)
    return xt[::-1] if reverse else xt


def batch_major(xt: np.ndarray, reverse: bool) -> np.ndarray:
    """The inverse of :func:`time_major`."""
    if reverse:
        xt = xt[::-1]
    return xt.transpose(1, 0, 2)


def project(x: np.ndarray, W: np.ndarray, in_drop: np.ndarray | None, reverse: bool, out: np.ndarray) -> None:
    """``out[t] = x_t W`` (time-major, processing order), input dropout applied."""
    B, T, F = x.shape
    G = W.shape[1]
    xt = time_major(x, reverse)
    flat = out.reshape(T * B, G)
    if in_drop is None:
        np.matmul(xt.reshape(T * B, F), W, out=flat)
    elif in_drop.shape[1] == 1:
        np.matmul((xt * in_drop[:, 0, :]).reshape(T * B, F), W, out=flat)
    else:
        k = in_drop.shape[1]
        U = G // k
        for j in range(k):
            out[:, :, j * U:(j + 1) * U] = ((xt * in_drop[:, j, :]).reshape(T * B, F)
                                            @ W[:, j * U:(j + 1) * U]).reshape(T, B, U)


def project_grads(x: np.ndarray, W: np.ndarray, in_drop: np.ndarray | None, reverse: bool, dX: np.ndarray,
                  need_x: bool, need_W: bool) -> tuple[Any, Any]:
    """Gradients of :func:`project` for the cotangent ``dX`` (time-major): (dx, dW)."""
    B, T, F = x.shape
    G = W.shape[1]
    d2 = dX.reshape(T * B, G)
    xt = time_major(x, reverse)
    dx = dW = None
    k = 1 if in_drop is None else in_drop.shape[1]
    U = G // k
    if need_W:
        if in_drop is None:
            dW = xt.reshape(T * B, F).T @ d2
        elif k == 1:
            dW = (xt * in_drop[:, 0, :]).reshape(T * B, F).T @ d2
        else:
            dW = np.empty_like(W)
            for j in range(k):
                dW[:, j * U:(j + 1) * U] = (xt * in_drop[:, j, :]).reshape(T * B, F).T @ d2[:, j * U:(j + 1) * U]
    if need_x:
        if k == 1:
            dxt = (d2 @ W.T).reshape(T, B, F)
            if in_drop is not None:
                dxt *= in_drop[:, 0, :]
        else:
            dxt = np.zeros((T, B, F), dX.dtype)
            for j in range(k):
                dxt += (d2[:, j * U:(j + 1) * U] @ W[:, j * U:(j + 1) * U].T).reshape(T, B, F) * in_drop[:, j, :]
        dx = np.ascontiguousarray(batch_major(dxt, reverse))
    return dx, dW


def recurrent_product(h: np.ndarray, R: np.ndarray, rec_drop: np.ndarray | None, out: np.ndarray) -> None:
    """``out = h R``; with per-gate recurrent dropout masks, block j is ``(h * mask_j) R_j``."""
    if rec_drop is None:
        np.matmul(h, R, out=out)
    elif rec_drop.shape[1] == 1:
        np.matmul(h * rec_drop[:, 0, :], R, out=out)
    else:
        k = rec_drop.shape[1]
        U = R.shape[1] // k
        for j in range(k):
            np.matmul(h * rec_drop[:, j, :], R[:, j * U:(j + 1) * U], out=out[:, j * U:(j + 1) * U])


def recurrent_input_grad(d: np.ndarray, R: np.ndarray, rec_drop: np.ndarray | None) -> np.ndarray:
    """The cotangent of ``h`` through :func:`recurrent_product` for the cotangent ``d``."""
    if rec_drop is None:
        return d @ R.T
    if rec_drop.shape[1] == 1:
        return (d @ R.T) * rec_drop[:, 0, :]
    k = rec_drop.shape[1]
    U = R.shape[1] // k
    out = (d[:, :U] @ R[:, :U].T) * rec_drop[:, 0, :]
    for j in range(1, k):
        out += (d[:, j * U:(j + 1) * U] @ R[:, j * U:(j + 1) * U].T) * rec_drop[:, j, :]
    return out


def recurrent_weight_grad(Hprev: np.ndarray, d: np.ndarray, rec_drop: np.ndarray | None) -> np.ndarray:
    """``sum_t h_{t-1}^T d_t`` for all steps (``Hprev`` and ``d`` time-major), dropout-masked."""
    T, B, U = Hprev.shape
    G = d.shape[2]
    d2 = d.reshape(T * B, G)
    if rec_drop is None:
        return Hprev.reshape(T * B, U).T @ d2
    k = rec_drop.shape[1]
    if k == 1:
        return (Hprev * rec_drop[:, 0, :]).reshape(T * B, U).T @ d2
    Ug = G // k
    out = np.empty((U, G), d.dtype)
    for j in range(k):
        out[:, j * Ug:(j + 1) * Ug] = (Hprev * rec_drop[:, j, :]).reshape(T * B, U).T @ d2[:, j * Ug:(j + 1) * Ug]
    return out


def _step_masks(mask: np.ndarray | None, reverse: bool) -> np.ndarray | None:
    """The sequence mask as (time, batch, 1) bool in processing order; None when it masks
    nothing (a batch without padding runs the unmasked loop)."""
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    if m.all():
        return None
    m = m.T
    if reverse:
        m = m[::-1]
    return np.ascontiguousarray(m)[:, :, None]


def _initial(state: np.ndarray | None, out: np.ndarray) -> None:
    if state is None:
        out.fill(0)
    else:
        out[...] = state


def _negated_sigmoid_blocks(dtype: np.dtype, units: int, sigmoid_blocks: tuple[bool, ...]) -> np.ndarray:
    """-1 on the columns of sigmoid gates, 1 elsewhere: the pre-activations of the sigmoid
    gates are kept negated, so that ``sigmoid(z) = 1 / (1 + exp(-z))`` is three in-place
    passes (NumPy's float32 exp is twice as fast as its tanh)."""
    return np.repeat(np.array([-1.0 if s else 1.0 for s in sigmoid_blocks], dtype), units)


def _sigmoid_of_negated(block: np.ndarray) -> None:
    """``block <- 1 / (1 + exp(block))``, in place (``block`` holds -z; exp overflowing to
    inf for very negative z gives the exact limit 0)."""
    np.exp(block, out=block)
    block += 1
    np.reciprocal(block, out=block)


def _derivative_shift(dtype: np.dtype, units: int, sigmoid_blocks: tuple[bool, ...]) -> np.ndarray:
    """The gates' derivatives from their activations a: a(1 - a) for a sigmoid, (1 - a)(1 + a)
    for a tanh, i.e. (1 - a)(a + k) with k = 0 or 1 per column."""
    return np.repeat(np.array([0.0 if s else 1.0 for s in sigmoid_blocks], dtype), units)


# -------------------------------------------------------------------------------------
# Workspaces: one array per call; the result is a view into it.
# -------------------------------------------------------------------------------------
def _carve(ws: np.ndarray, parts: list[tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    views, start = {}, 0
    for name, shape in parts:
        n = int(np.prod(shape))
        views[name] = ws[start:start + n].reshape(shape)
        start += n
    return views


def _layout(cell: str, T: int, B: int, U: int, reset_after: bool) -> list[tuple[str, tuple[int, ...]]]:
    if cell == "lstm":
        return [("HC", (2, T + 1, B, U)), ("A", (T, B, 4 * U)), ("TC", (T, B, U))]
    if cell == "gru":
        # A: z, r, hh; UH: the recurrent part of hh's pre-activation (reset_after) or r * h_{t-1}
        return [("H", (T + 1, B, U)), ("A", (T, B, 3 * U)), ("UH", (T, B, U))]
    return [("H", (T + 1, B, U))]


def _new_workspace(cell: str, T: int, B: int, U: int, reset_after: bool, dtype: np.dtype) -> dict[str, np.ndarray]:
    parts = _layout(cell, T, B, U, reset_after)
    size = sum(int(np.prod(s)) for _, s in parts)
    if size >= RETAIN_MIN:
        # a training step allocates and frees megabytes here: keep them mapped (no page faults)
        memory.retain_freed_memory()
    return _carve(np.empty(size, dtype), parts)


def _result_view(cell: str, views: dict[str, np.ndarray], last: bool = False) -> np.ndarray:
    """All states (``(time, batch, units)``; LSTM ``(2, time, batch, units)``), or with ``last``
    only the final hidden state ``(batch, units)``."""
    H = views["HC"][0] if cell == "lstm" else views["H"]
    if last:
        return H[-1]
    return views["HC"][:, 1:] if cell == "lstm" else H[1:]


def workspace_of(cell: str, out: Any, T: int, B: int, U: int, reset_after: bool,
                 last: bool = False) -> dict[str, np.ndarray] | None:
    """The workspace views behind a forward result, or None if ``out`` is not one."""
    ws = getattr(out, "base", None)
    if not isinstance(ws, np.ndarray) or ws.ndim != 1 or ws.dtype != out.dtype:
        return None
    parts = _layout(cell, T, B, U, reset_after)
    if ws.size != sum(int(np.prod(s)) for _, s in parts):
        return None
    views = _carve(ws, parts)
    expected = _result_view(cell, views, last)
    if (expected.ctypes.data != out.ctypes.data or expected.shape != out.shape
            or expected.strides != out.strides):
        return None
    return views


# -------------------------------------------------------------------------------------
# LSTM: z = x W + h R + b;  i, f, o = sigmoid;  g = tanh;  c = f c' + i g;  h = o tanh(c)
# -------------------------------------------------------------------------------------
def lstm_forward(x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any, h0: Any, c0: Any, mask: Any,
                 in_drop: Any, rec_drop: Any, reverse: bool, last: bool = False) -> np.ndarray:
    B, T, _ = x.shape
    G = W.shape[1]
    U = G // 4
    dt = x.dtype
    v = _new_workspace("lstm", T, B, U, False, dt)
    HC, A, TC = v["HC"], v["A"], v["TC"]
    H, C = HC[0], HC[1]
    if cells.available(dt):
        lstm_forward_fused(x, W, R, b, h0, c0, mask, in_drop, rec_drop, reverse, v)
        return _result_view("lstm", v, last)
    sign = _negated_sigmoid_blocks(dt, U, (True, True, False, True))
    project(x, W * sign, in_drop, reverse, A)
    if b is not None:
        A += b * sign
    Rs = R * sign
    _initial(h0, H[0])
    _initial(c0, C[0])
    steps = _step_masks(mask, reverse)
    rec = np.empty((B, G), dt)
    ig = np.empty((B, U), dt)
    with np.errstate(over="ignore"):  # exp of large -z: inf, whose sigmoid is exactly 0
        for t in range(T):
            a = A[t]
            recurrent_product(H[t], Rs, rec_drop, rec)
            a += rec
            _sigmoid_of_negated(a[:, :2 * U])
            np.tanh(a[:, 2 * U:3 * U], out=a[:, 2 * U:3 * U])
            _sigmoid_of_negated(a[:, 3 * U:])
            cn = C[t + 1]
            np.multiply(a[:, U:2 * U], C[t], out=cn)
            np.multiply(a[:, :U], a[:, 2 * U:3 * U], out=ig)
            cn += ig
            np.tanh(cn, out=TC[t])
            np.multiply(a[:, 3 * U:], TC[t], out=H[t + 1])
            if steps is not None:
                held = ~steps[t]
                np.copyto(H[t + 1], H[t], where=held)
                np.copyto(cn, C[t], where=held)
    return _result_view("lstm", v, last)


def _initial_cotangent(g: np.ndarray, last: bool, B: int, U: int, dtype: np.dtype) -> tuple[np.ndarray, Any]:
    """The hidden state's cotangent before the reversed loop, and the per-step cotangents to
    add in it (None when the result is the last state alone)."""
    g = np.asarray(g, dtype)
    if last:
        return g.copy(), None
    return np.zeros((B, U), dtype), g


def lstm_backward(g: np.ndarray, out: np.ndarray, x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any, h0: Any,
                  c0: Any, mask: Any, in_drop: Any, rec_drop: Any, reverse: bool, needs: tuple[bool, ...],
                  last: bool = False) -> list:
    """Cotangents of (x, W, R, b, h0, c0) for the cotangent ``g`` of the result (None where
    ``needs`` is False)."""
    B, T, _ = x.shape
    G = W.shape[1]
    U = G // 4
    dt = x.dtype
    v = workspace_of("lstm", out, T, B, U, False, last)
    if v is None:  # not our view: compute the forward again
        v = workspace_of("lstm", lstm_forward(x, W, R, b, h0, c0, mask, in_drop, rec_drop, reverse, last),
                         T, B, U, False, last)
    if cells.available(dt):
        return lstm_backward_fused(g, x, W, R, b, mask, in_drop, rec_drop, reverse, needs, last, v)
    HC, A, TC = v["HC"], v["A"], v["TC"]
    H, C = HC[0], HC[1]
    dh, per_step = _initial_cotangent(g, last, B, U, dt)
    gH, gC = (None, None) if per_step is None else (per_step[0], per_step[1])
    dshift = _derivative_shift(dt, U, (True, True, False, True))
    steps = _step_masks(mask, reverse)
    dZ = np.empty((T, B, G), dt)
    dc = np.zeros((B, U), dt)
    t1 = np.empty((B, G), dt)
    t2 = np.empty((B, G), dt)
    tmp = np.empty((B, U), dt)
    for t in range(T - 1, -1, -1):
        if gH is not None:
            dh += gH[t]
            dc += gC[t]
        a, tc, d = A[t], TC[t], dZ[t]
        o = a[:, 3 * U:]
        # the cell state's total cotangent: dc + dh * o * (1 - tanh(c)^2)
        np.multiply(tc, tc, out=tmp)
        np.subtract(1, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        if steps is None:
            dc += tmp
            dct = dc
        else:
            dct = dc + tmp
        # what multiplies each gate's derivative: dc*g, dc*c', dc*i, dh*tanh(c)
        np.multiply(dct, a[:, 2 * U:3 * U], out=d[:, :U])
        np.multiply(dct, C[t], out=d[:, U:2 * U])
        np.multiply(dct, a[:, :U], out=d[:, 2 * U:3 * U])
        np.multiply(dh, tc, out=d[:, 3 * U:])
        # times the gates' derivatives, (1 - a)(a + k)
        np.subtract(1, a, out=t1)
        np.add(a, dshift, out=t2)
        t1 *= t2
        d *= t1
        if steps is None:
            dc *= a[:, U:2 * U]
            if t:
                dh = recurrent_input_grad(d, R, rec_drop)
        else:
            m = steps[t]
            d *= m
            np.copyto(dc, dct * a[:, U:2 * U], where=m)
            dhp = recurrent_input_grad(d, R, rec_drop)
            dhp += dh * ~m
            dh = dhp
    need_x, need_W, need_R, need_b, need_h0, need_c0 = needs
    if steps is None and T and need_h0:
        dh = recurrent_input_grad(dZ[0], R, rec_drop)
    dx, dW = project_grads(x, W, in_drop, reverse, dZ, need_x, need_W)
    dR = recurrent_weight_grad(H[:T], dZ, rec_drop) if need_R else None
    db = dZ.reshape(T * B, G).sum(axis=0) if need_b and b is not None else None
    return [dx, dW, dR, db, dh if need_h0 else None, dc if need_c0 else None]


# -------------------------------------------------------------------------------------
# GRU (Keras): z, r = sigmoid; reset_after: hh = tanh(x_h + r * (h R_h + b_rh));
# otherwise hh = tanh(x_h + (r * h) R_h); h = z h' + (1 - z) hh
# -------------------------------------------------------------------------------------
def _gru_biases(b: Any, reset_after: bool) -> tuple[Any, Any]:
    if b is None:
        return None, None
    return (b[0], b[1]) if reset_after else (b, None)


def gru_forward(x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any, h0: Any, mask: Any, in_drop: Any,
                rec_drop: Any, reverse: bool, reset_after: bool, last: bool = False) -> np.ndarray:
    B, T, _ = x.shape
    G = W.shape[1]
    U = G // 3
    dt = x.dtype
    v = _new_workspace("gru", T, B, U, reset_after, dt)
    H, A, UH = v["H"], v["A"], v["UH"]
    if reset_after and cells.available(dt):
        gru_forward_fused(x, W, R, b, h0, mask, in_drop, rec_drop, reverse, v)
        return _result_view("gru", v, last)
    sign = _negated_sigmoid_blocks(dt, U, (True, True, False))  # z and r are sigmoids: kept negated
    project(x, W * sign, in_drop, reverse, A)
    b_in, b_rec = _gru_biases(b, reset_after)
    if b_in is not None:
        A += b_in * sign
    _initial(h0, H[0])
    steps = _step_masks(mask, reverse)
    drop_zr = drop_h = None
    if rec_drop is not None:
        drop_zr = rec_drop if rec_drop.shape[1] == 1 else rec_drop[:, :2]
        drop_h = rec_drop if rec_drop.shape[1] == 1 else rec_drop[:, 2:]
    rec = np.empty((B, G if reset_after else 2 * U), dt)
    Rzr = R[:, :2 * U]
    with np.errstate(over="ignore"):  # exp of large -z: inf, whose sigmoid is exactly 0
        for t in range(T):
            a, hp = A[t], H[t]
            zr = a[:, :2 * U]
            if reset_after:
                recurrent_product(hp, R, rec_drop, rec)
                if b_rec is not None:
                    rec += b_rec
                UH[t] = rec[:, 2 * U:]
                zr -= rec[:, :2 * U]
            else:
                recurrent_product(hp, Rzr, drop_zr, rec)
                zr -= rec
            _sigmoid_of_negated(zr)
            z, r, hh = a[:, :U], a[:, U:2 * U], a[:, 2 * U:]
            if reset_after:
                hh += r * UH[t]
            else:
                np.multiply(r, hp, out=UH[t])
                hh += recurrent_product_h(UH[t], R[:, 2 * U:], drop_h)
            np.tanh(hh, out=hh)
            hn = H[t + 1]
            np.subtract(hp, hh, out=hn)
            hn *= z
            hn += hh
            if steps is not None:
                np.copyto(hn, hp, where=~steps[t])
    return _result_view("gru", v, last)


def recurrent_product_h(h: np.ndarray, Rh: np.ndarray, drop: Any) -> np.ndarray:
    if drop is None:
        return h @ Rh
    return (h * drop[:, 0, :]) @ Rh


def gru_backward(g: np.ndarray, out: np.ndarray, x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any, h0: Any,
                 mask: Any, in_drop: Any, rec_drop: Any, reverse: bool, reset_after: bool,
                 needs: tuple[bool, ...], last: bool = False) -> list:
    """Cotangents of (x, W, R, b, h0) for the cotangent ``g`` of the result."""
    B, T, _ = x.shape
    G = W.shape[1]
    U = G // 3
    dt = x.dtype
    v = workspace_of("gru", out, T, B, U, reset_after, last)
    if v is None:
        v = workspace_of("gru", gru_forward(x, W, R, b, h0, mask, in_drop, rec_drop, reverse, reset_after, last),
                         T, B, U, reset_after, last)
    if reset_after and cells.available(dt):
        return gru_backward_fused(g, x, W, R, b, mask, in_drop, rec_drop, reverse, needs, last, v)
    H, A, UH = v["H"], v["A"], v["UH"]
    dh, per_step = _initial_cotangent(g, last, B, U, dt)
    steps = _step_masks(mask, reverse)
    drop_zr = drop_h = None
    if rec_drop is not None:
        drop_zr = rec_drop if rec_drop.shape[1] == 1 else rec_drop[:, :2]
        drop_h = rec_drop if rec_drop.shape[1] == 1 else rec_drop[:, 2:]
    dX = np.empty((T, B, G), dt)  # cotangents of the input pre-activations
    dU = np.empty((T, B, G), dt) if reset_after else None  # of h R + b_rec
    tmp = np.empty((B, U), dt)
    Rzr, Rh = R[:, :2 * U], R[:, 2 * U:]
    for t in range(T - 1, -1, -1):
        if per_step is not None:
            dh += per_step[t]
        a, hp, d = A[t], H[t], dX[t]
        z, r, hh = a[:, :U], a[:, U:2 * U], a[:, 2 * U:]
        dz, dr, dhh = d[:, :U], d[:, U:2 * U], d[:, 2 * U:]
        # dz = dh (h' - hh) z (1 - z)
        np.subtract(hp, hh, out=dz)
        dz *= dh
        dz *= z
        np.subtract(1, z, out=tmp)
        dz *= tmp
        # dhh = dh (1 - z) (1 - hh^2)
        np.multiply(dh, tmp, out=dhh)
        np.multiply(hh, hh, out=tmp)
        np.subtract(1, tmp, out=tmp)
        dhh *= tmp
        if reset_after:
            # dr = dhh u_h r (1 - r)
            np.multiply(dhh, UH[t], out=dr)
        else:
            # dr = ((dhh R_h^T) * drop_h) h' r (1 - r)
            drh = recurrent_input_grad_h(dhh, Rh, drop_h)
            np.multiply(drh, hp, out=dr)
        dr *= r
        np.subtract(1, r, out=tmp)
        dr *= tmp
        if steps is not None:
            d *= steps[t]
        if reset_after:
            du = dU[t]
            du[:, :2 * U] = d[:, :2 * U]
            np.multiply(d[:, 2 * U:], r, out=du[:, 2 * U:])
            dhp = recurrent_input_grad(du, R, rec_drop)
        else:
            dhp = recurrent_input_grad(d[:, :2 * U], Rzr, drop_zr)
            dhp += drh * r if steps is None else drh * r * steps[t]
        if steps is None:
            dhp += dh * z
        else:
            dhp += np.where(steps[t], dh * z, dh)
        dh = dhp
    need_x, need_W, need_R, need_b, need_h0 = needs
    dx, dW = project_grads(x, W, in_drop, reverse, dX, need_x, need_W)
    dR = db = None
    if need_R:
        if reset_after:
            dR = recurrent_weight_grad(H[:T], dU, rec_drop)
        else:
            dR = np.empty_like(R)
            dR[:, :2 * U] = recurrent_weight_grad(H[:T], dX[:, :, :2 * U], drop_zr)
            dR[:, 2 * U:] = recurrent_weight_grad(UH, dX[:, :, 2 * U:], drop_h)
    if need_b and b is not None:
        db_in = dX.reshape(T * B, G).sum(axis=0)
        db = np.stack([db_in, dU.reshape(T * B, G).sum(axis=0)]) if reset_after else db_in
    return [dx, dW, dR, db, dh if need_h0 else None]


def recurrent_input_grad_h(d: np.ndarray, Rh: np.ndarray, drop: Any) -> np.ndarray:
    out = d @ Rh.T
    if drop is not None:
        out *= drop[:, 0, :]
    return out


# -------------------------------------------------------------------------------------
# SimpleRNN: h = tanh(x W + h' R + b)
# -------------------------------------------------------------------------------------
def simple_rnn_forward(x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any, h0: Any, mask: Any, in_drop: Any,
                       rec_drop: Any, reverse: bool, last: bool = False) -> np.ndarray:
    B, T, _ = x.shape
    U = W.shape[1]
    dt = x.dtype
    v = _new_workspace("rnn", T, B, U, False, dt)
    H = v["H"]
    A = np.empty((T, B, U), dt)
    project(x, W, in_drop, reverse, A)
    if b is not None:
        A += b
    _initial(h0, H[0])
    steps = _step_masks(mask, reverse)
    rec = np.empty((B, U), dt)
    for t in range(T):
        a = A[t]
        recurrent_product(H[t], R, rec_drop, rec)
        a += rec
        np.tanh(a, out=H[t + 1])
        if steps is not None:
            np.copyto(H[t + 1], H[t], where=~steps[t])
    return _result_view("rnn", v, last)


def simple_rnn_backward(g: np.ndarray, out: np.ndarray, x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any,
                        h0: Any, mask: Any, in_drop: Any, rec_drop: Any, reverse: bool,
                        needs: tuple[bool, ...], last: bool = False) -> list:
    """Cotangents of (x, W, R, b, h0) for the cotangent ``g`` of the result."""
    B, T, _ = x.shape
    U = W.shape[1]
    dt = x.dtype
    v = workspace_of("rnn", out, T, B, U, False, last)
    if v is None:
        v = workspace_of("rnn", simple_rnn_forward(x, W, R, b, h0, mask, in_drop, rec_drop, reverse, last),
                         T, B, U, False, last)
    H = v["H"]
    dh, per_step = _initial_cotangent(g, last, B, U, dt)
    steps = _step_masks(mask, reverse)
    dA = np.empty((T, B, U), dt)
    for t in range(T - 1, -1, -1):
        if per_step is not None:
            dh += per_step[t]
        d = dA[t]
        hn = H[t + 1]
        np.multiply(hn, hn, out=d)
        np.subtract(1, d, out=d)
        d *= dh
        if steps is None:
            dh = recurrent_input_grad(d, R, rec_drop)
        else:
            d *= steps[t]
            dhp = recurrent_input_grad(d, R, rec_drop)
            dhp += dh * ~steps[t]
            dh = dhp
    need_x, need_W, need_R, need_b, need_h0 = needs
    dx, dW = project_grads(x, W, in_drop, reverse, dA, need_x, need_W)
    dR = recurrent_weight_grad(H[:T], dA, rec_drop) if need_R else None
    db = dA.reshape(T * B, U).sum(axis=0) if need_b and b is not None else None
    return [dx, dW, dR, db, dh if need_h0 else None]


# -------------------------------------------------------------------------------------
# float32 LSTM and GRU (reset_after): the loops above with each step's gate work as one
# call of recurrent_cells (C, or its NumPy twin), the biases added there too; products
# into buffers allocated once per call. ``v`` is the forward's workspace.
# -------------------------------------------------------------------------------------
def _keep(steps: np.ndarray | None, dtype: np.dtype) -> Any:
    """The step masks as the cells' ``keep`` argument: None, or a (time, batch) 1/0 array per step."""
    return None if steps is None else (np.ascontiguousarray(steps[:, :, 0], dtype=dtype),)


def _input_grad_into(d: np.ndarray, R: np.ndarray, rec_drop: Any, out: np.ndarray) -> None:
    """``out = `` the cotangent of ``h`` through ``recurrent_product`` for ``d``."""
    if rec_drop is None:
        np.matmul(d, R.T, out=out)
    else:
        out[...] = recurrent_input_grad(d, R, rec_drop)


def lstm_forward_fused(x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any, h0: Any, c0: Any, mask: Any,
                       in_drop: Any, rec_drop: Any, reverse: bool, v: dict[str, np.ndarray]) -> None:
    B, T, _ = x.shape
    G = W.shape[1]
    HC, A, TC = v["HC"], v["A"], v["TC"]
    H, C = HC[0], HC[1]
    project(x, W, in_drop, reverse, A)
    bias = np.zeros(G, x.dtype) if b is None else np.ascontiguousarray(b, x.dtype)
    _initial(h0, H[0])
    _initial(c0, C[0])
    steps = _step_masks(mask, reverse)
    rec = np.empty((B, G), x.dtype)
    step = cells.bind("lstm", (A,), rec, bias, (C[:-1],), (C[1:],), (TC,), (H[1:],), rows=B, units=G // 4)
    for t in range(T):
        recurrent_product(H[t], R, rec_drop, rec)
        step(t)
        if steps is not None:
            held = ~steps[t]
            np.copyto(H[t + 1], H[t], where=held)
            np.copyto(C[t + 1], C[t], where=held)


def lstm_backward_fused(g: np.ndarray, x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any, mask: Any, in_drop: Any,
                        rec_drop: Any, reverse: bool, needs: tuple[bool, ...], last: bool,
                        v: dict[str, np.ndarray]) -> list:
    B, T, _ = x.shape
    G = W.shape[1]
    U = G // 4
    dt = x.dtype
    HC, A, TC = v["HC"], v["A"], v["TC"]
    H, C = HC[0], HC[1]
    dh, per_step = _initial_cotangent(g, last, B, U, dt)
    gH, gC = (None, None) if per_step is None else (per_step[0], per_step[1])
    need_x, need_W, need_R, need_b, need_h0, need_c0 = needs
    steps = _step_masks(mask, reverse)
    dZ = np.empty((T, B, G), dt)
    dc = np.zeros((B, U), dt)
    step = cells.bind("lstm_grad", (A,), (TC,), (C[:-1],), dh, dc, (dZ,), _keep(steps, dt), rows=B, units=U)
    for t in range(T - 1, -1, -1):
        if gH is not None:
            dh += gH[t]
            dc += gC[t]
        step(t)
        if steps is None:
            if t or need_h0:
                _input_grad_into(dZ[t], R, rec_drop, dh)
        else:
            dhp = recurrent_input_grad(dZ[t], R, rec_drop)
            dhp += dh * ~steps[t]
            dh[...] = dhp
    dx, dW = project_grads(x, W, in_drop, reverse, dZ, need_x, need_W)
    dR = recurrent_weight_grad(H[:T], dZ, rec_drop) if need_R else None
    db = dZ.reshape(T * B, G).sum(axis=0) if need_b and b is not None else None
    return [dx, dW, dR, db, dh if need_h0 else None, dc if need_c0 else None]


def gru_forward_fused(x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any, h0: Any, mask: Any, in_drop: Any,
                      rec_drop: Any, reverse: bool, v: dict[str, np.ndarray]) -> None:
    B, T, _ = x.shape
    G = W.shape[1]
    H, A, UH = v["H"], v["A"], v["UH"]
    U = G // 3
    project(x, W, in_drop, reverse, A)
    bias, rbias = np.zeros(G, x.dtype), np.zeros(U, x.dtype)
    if b is not None:
        b_in, b_rec = np.asarray(b[0], x.dtype), np.asarray(b[1], x.dtype)
        np.add(b_in[:2 * U], b_rec[:2 * U], out=bias[:2 * U])
        bias[2 * U:] = b_in[2 * U:]
        rbias[...] = b_rec[2 * U:]
    _initial(h0, H[0])
    steps = _step_masks(mask, reverse)
    rec = np.empty((B, G), x.dtype)
    step = cells.bind("gru", (A,), rec, bias, rbias, (UH,), (H[:-1],), (H[1:],), rows=B, units=U)
    for t in range(T):
        recurrent_product(H[t], R, rec_drop, rec)
        step(t)
        if steps is not None:
            np.copyto(H[t + 1], H[t], where=~steps[t])


def gru_backward_fused(g: np.ndarray, x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any, mask: Any, in_drop: Any,
                       rec_drop: Any, reverse: bool, needs: tuple[bool, ...], last: bool,
                       v: dict[str, np.ndarray]) -> list:
    B, T, _ = x.shape
    G = W.shape[1]
    U = G // 3
    dt = x.dtype
    H, A, UH = v["H"], v["A"], v["UH"]
    dh, per_step = _initial_cotangent(g, last, B, U, dt)
    need_x, need_W, need_R, need_b, need_h0 = needs
    steps = _step_masks(mask, reverse)
    dX = np.empty((T, B, G), dt)  # cotangents of the input pre-activations
    dU = np.empty((T, B, G), dt)  # of h R + b_rec
    carry = np.empty((B, U), dt)
    step = cells.bind("gru_grad", (A,), (UH,), (H[:-1],), dh, (dX,), (dU,), carry, _keep(steps, dt), rows=B,
                      units=U)
    for t in range(T - 1, -1, -1):
        if per_step is not None:
            dh += per_step[t]
        step(t)
        if t or need_h0:
            _input_grad_into(dU[t], R, rec_drop, dh)
            dh += carry
    dx, dW = project_grads(x, W, in_drop, reverse, dX, need_x, need_W)
    dR = recurrent_weight_grad(H[:T], dU, rec_drop) if need_R else None
    db = None
    if need_b and b is not None:
        db = np.stack([dX.reshape(T * B, G).sum(axis=0), dU.reshape(T * B, G).sum(axis=0)])
    return [dx, dW, dR, db, dh if need_h0 else None]
