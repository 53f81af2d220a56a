"""Oracles for the sequence-layer tests: PyTorch modules with tapegrad's (Keras's) weights
mapped in (the mapping of docs/sequences.md), and small NumPy references for what
PyTorch has no equivalent of (GRU with reset_after=False, recurrent dropout)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def t(a: Any) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float64)))


def gru_permutation(units: int) -> np.ndarray:
    """Keras's GRU gate blocks z, r, h as PyTorch's r, z, n."""
    return np.r_[units:2 * units, 0:units, 2 * units:3 * units]


def torch_rnn(cell: str, weights: list[np.ndarray], bidirectional_weights: list[np.ndarray] | None = None,
              use_bias: bool = True) -> torch.nn.Module:
    """``nn.LSTM``/``nn.GRU``/``nn.RNN`` (batch_first, float64) with Keras weights
    ``[kernel, recurrent_kernel, bias]`` (and the backward layer's for a bidirectional one)."""
    W = weights[0]
    features, k_units = W.shape
    units = weights[1].shape[0]
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "simple_rnn": torch.nn.RNN}[cell]
    module = cls(features, units, batch_first=True, bias=use_bias, bidirectional=bidirectional_weights is not None,
                 dtype=torch.float64)
    sets = [("", weights)] + ([("_reverse", bidirectional_weights)] if bidirectional_weights is not None else [])
    with torch.no_grad():
        for suffix, (kernel, recurrent, *bias) in sets:
            perm = gru_permutation(units) if cell == "gru" else np.arange(k_units)
            getattr(module, f"weight_ih_l0{suffix}").copy_(t(kernel[:, perm].T))
            getattr(module, f"weight_hh_l0{suffix}").copy_(t(recurrent[:, perm].T))
            if use_bias:
                b = bias[0]
                if cell == "gru":
                    getattr(module, f"bias_ih_l0{suffix}").copy_(t(b[0, perm]))
                    getattr(module, f"bias_hh_l0{suffix}").copy_(t(b[1, perm]))
                else:
                    getattr(module, f"bias_ih_l0{suffix}").copy_(t(b))
                    getattr(module, f"bias_hh_l0{suffix}").zero_()
    return module


def torch_grads_to_keras(cell: str, module: torch.nn.Module, suffix: str = "", use_bias: bool = True) -> list:
    """The gradients of a torch_rnn module's weights in Keras's layouts."""
    units = module.hidden_size
    perm = gru_permutation(units) if cell == "gru" else None
    inverse = np.argsort(perm) if perm is not None else None

    def back(a: torch.Tensor) -> np.ndarray:
        a = a.detach().numpy()
        return a if inverse is None else a[..., inverse]

    out = [back(getattr(module, f"weight_ih_l0{suffix}").grad.T), back(getattr(module, f"weight_hh_l0{suffix}").grad.T)]
    if use_bias:
        bi = back(getattr(module, f"bias_ih_l0{suffix}").grad)
        bh = back(getattr(module, f"bias_hh_l0{suffix}").grad)
        out.append(np.stack([bi, bh]) if cell == "gru" else bi)  # (torch's two biases get the same gradient)
    return out


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def numpy_recurrent(cell: str, x: np.ndarray, weights: list[np.ndarray], reset_after: bool = True,
                    in_drop: np.ndarray | None = None, rec_drop: np.ndarray | None = None,
                    h0: np.ndarray | None = None, c0: np.ndarray | None = None,
                    activation: Any = np.tanh) -> tuple[np.ndarray, list]:
    """Keras's cell equations step by step in NumPy: (outputs (batch, time, units), [h, (c)]).
    Dropout masks are ``(batch, k, features)`` / ``(batch, k, units)`` with k = 1 or one per gate."""
    W, R = weights[0], weights[1]
    b = weights[2] if len(weights) > 2 else None
    batch, steps, _ = x.shape
    units = R.shape[0]
    k = W.shape[1] // units
    h = np.zeros((batch, units)) if h0 is None else h0
    c = np.zeros((batch, units)) if c0 is None else c0

    def drop(mask: np.ndarray | None, j: int) -> Any:
        if mask is None:
            return 1.0
        return mask[:, j if mask.shape[1] > 1 else 0, :]

    def blocks(v: np.ndarray, mask: np.ndarray | None, M: np.ndarray, count: int) -> list:
        return [(v * drop(mask, j)) @ M[:, j * units:(j + 1) * units] for j in range(count)]

    b_in, b_rec = (b[0], b[1]) if (cell == "gru" and reset_after and b is not None) else (b, None)
    outs = []
    for s in range(steps):
        xs = blocks(x[:, s], in_drop, W, k)
        if b_in is not None:
            xs = [xs[j] + b_in[j * units:(j + 1) * units] for j in range(k)]
        if cell == "lstm":
            hs = blocks(h, rec_drop, R, 4)
            i, f = sigmoid(xs[0] + hs[0]), sigmoid(xs[1] + hs[1])
            g, o = activation(xs[2] + hs[2]), sigmoid(xs[3] + hs[3])
            c = f * c + i * g
            h = o * activation(c)
        elif cell == "gru":
            if reset_after:
                hs = blocks(h, rec_drop, R, 3)
                if b_rec is not None:
                    hs = [hs[j] + b_rec[j * units:(j + 1) * units] for j in range(3)]
                z, r = sigmoid(xs[0] + hs[0]), sigmoid(xs[1] + hs[1])
                hh = activation(xs[2] + r * hs[2])
            else:
                hs = blocks(h, rec_drop, R, 2)
                z, r = sigmoid(xs[0] + hs[0]), sigmoid(xs[1] + hs[1])
                hh = activation(xs[2] + ((r * h) * drop(rec_drop, 2)) @ R[:, 2 * units:])
            h = z * h + (1 - z) * hh
        else:
            h = activation(xs[0] + (h * drop(rec_drop, 0)) @ R)
        outs.append(h)
    return np.stack(outs, axis=1), ([h, c] if cell == "lstm" else [h])
