"""The float32 LSTM and GRU (``reset_after``) loops with fused cell steps.

The same loops as :mod:`tapegrad.ops.recurrent_kernels` (which calls these for float32
and keeps its own for other dtypes and the GRU without ``reset_after``), with the gate
work of each step done by one call of :mod:`tapegrad.ops.recurrent_cells` (a vectorised
C loop, or its NumPy twin without the native library) instead of a dozen NumPy passes;
the products stay NumPy's (BLAS), into buffers allocated once per call. Arguments and
results are those of the ``*_forward`` and ``*_backward`` functions there; ``v`` is the
forward's workspace (see ``recurrent_kernels._layout``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import recurrent_cells as cells
from . import recurrent_kernels as rk


def _keep(steps: np.ndarray | None, dtype: np.dtype) -> Any:
    """The step masks as the cells' ``keep`` argument: None, or a (time, batch) 1/0 array per step."""
    return None if steps is None else (np.ascontiguousarray(steps[:, :, 0], dtype=dtype),)


def _input_grad_into(d: np.ndarray, R: np.ndarray, rec_drop: Any, out: np.ndarray) -> None:
    """``out = `` the cotangent of ``h`` through ``recurrent_product`` for ``d``."""
    if rec_drop is None:
        np.matmul(d, R.T, out=out)
    else:
        out[...] = rk.recurrent_input_grad(d, R, rec_drop)


def lstm_forward_fused(x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any, h0: Any, c0: Any, mask: Any,
                       in_drop: Any, rec_drop: Any, reverse: bool, v: dict[str, np.ndarray]) -> None:
    B, T, _ = x.shape
    G = W.shape[1]
    HC, A, TC = v["HC"], v["A"], v["TC"]
    H, C = HC[0], HC[1]
    rk.project(x, W, in_drop, reverse, A)
    bias = np.zeros(G, x.dtype) if b is None else np.ascontiguousarray(b, x.dtype)
    rk._initial(h0, H[0])
    rk._initial(c0, C[0])
    steps = rk._step_masks(mask, reverse)
    rec = np.empty((B, G), x.dtype)
    step = cells.bind("lstm", (A,), rec, bias, (C[:-1],), (C[1:],), (TC,), (H[1:],), rows=B, units=G // 4)
    for t in range(T):
        rk.recurrent_product(H[t], R, rec_drop, rec)
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
    dh, per_step = rk._initial_cotangent(g, last, B, U, dt)
    gH, gC = (None, None) if per_step is None else (per_step[0], per_step[1])
    need_x, need_W, need_R, need_b, need_h0, need_c0 = needs
    steps = rk._step_masks(mask, reverse)
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
            dhp = rk.recurrent_input_grad(dZ[t], R, rec_drop)
            dhp += dh * ~steps[t]
            dh[...] = dhp
    dx, dW = rk.project_grads(x, W, in_drop, reverse, dZ, need_x, need_W)
    dR = rk.recurrent_weight_grad(H[:T], dZ, rec_drop) if need_R else None
    db = dZ.reshape(T * B, G).sum(axis=0) if need_b and b is not None else None
    return [dx, dW, dR, db, dh if need_h0 else None, dc if need_c0 else None]


def gru_forward_fused(x: np.ndarray, W: np.ndarray, R: np.ndarray, b: Any, h0: Any, mask: Any, in_drop: Any,
                      rec_drop: Any, reverse: bool, v: dict[str, np.ndarray]) -> None:
    B, T, _ = x.shape
    G = W.shape[1]
    H, A, UH = v["H"], v["A"], v["UH"]
    U = G // 3
    rk.project(x, W, in_drop, reverse, A)
    bias, rbias = np.zeros(G, x.dtype), np.zeros(U, x.dtype)
    if b is not None:
        b_in, b_rec = np.asarray(b[0], x.dtype), np.asarray(b[1], x.dtype)
        np.add(b_in[:2 * U], b_rec[:2 * U], out=bias[:2 * U])
        bias[2 * U:] = b_in[2 * U:]
        rbias[...] = b_rec[2 * U:]
    rk._initial(h0, H[0])
    steps = rk._step_masks(mask, reverse)
    rec = np.empty((B, G), x.dtype)
    step = cells.bind("gru", (A,), rec, bias, rbias, (UH,), (H[:-1],), (H[1:],), rows=B, units=U)
    for t in range(T):
        rk.recurrent_product(H[t], R, rec_drop, rec)
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
    dh, per_step = rk._initial_cotangent(g, last, B, U, dt)
    need_x, need_W, need_R, need_b, need_h0 = needs
    steps = rk._step_masks(mask, reverse)
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
    dx, dW = rk.project_grads(x, W, in_drop, reverse, dX, need_x, need_W)
    dR = rk.recurrent_weight_grad(H[:T], dU, rec_drop) if need_R else None
    db = None
    if need_b and b is not None:
        db = np.stack([dX.reshape(T * B, G).sum(axis=0), dU.reshape(T * B, G).sum(axis=0)])
    return [dx, dW, dR, db, dh if need_h0 else None]
