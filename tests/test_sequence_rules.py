"""Batching rules (vmap) of the fused recurrent and attention primitives: each equals the
primitive applied to every mapped example in turn."""

from __future__ import annotations

import numpy as np
import pytest

from tapegrad.ops import attention as att
from tapegrad.ops import recurrent as rec
from tapegrad.ops.sequence_rules import JVP_RULES, RULES

V, B, T, F, U = 3, 2, 4, 3, 2


def _per_example(prim, args, dims, **params):
    rows = []
    for k in range(V):
        one = [a if d is None else np.take(a, k, axis=d) for a, d in zip(args, dims)]
        rows.append(np.asarray(prim(*one, **params)))
    return np.stack(rows)


def _check(prim, args, dims, **params):
    out, out_dim = RULES[prim](args, dims, **params)
    got = np.moveaxis(np.asarray(out.numpy() if hasattr(out, "numpy") else out), out_dim, 0)
    np.testing.assert_allclose(got, _per_example(prim, args, dims, **params), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("last", [False, True])
def test_recurrent_rules_merge_the_mapped_axis_into_the_batch(cell: str, last: bool) -> None:
    rng = np.random.default_rng(len(cell))
    k = rec.GATES[cell]
    x = rng.normal(size=(B, V, T, F))  # mapped along axis 1
    W, R = rng.normal(size=(F, k * U)), rng.normal(size=(U, k * U))
    h0 = rng.normal(size=(B, U))  # not mapped: the same for every example
    mask = rng.random((V, B, T)) > 0.3
    params = {"parts": ("h0", "mask"), "reverse": True, **({"last": True} if last else {})}
    _check(rec.PRIMITIVES[cell], [x, W, R, h0, mask], [1, None, None, None, 0], **params)
    # mapped weights: once per example
    Ws = rng.normal(size=(V, F, k * U))
    _check(rec.PRIMITIVES[cell], [x[:, 0], Ws, R], [None, 0, None], parts=(), reverse=False)


def test_backward_rules_run_once_per_example() -> None:
    rng = np.random.default_rng(1)
    x, W, R = rng.normal(size=(V, B, T, F)), rng.normal(size=(F, 4 * U)), rng.normal(size=(U, 4 * U))
    outs = np.stack([rec.lstm_p(x[k], W, R, parts=(), reverse=False) for k in range(V)])
    g = rng.normal(size=outs.shape)
    _check(rec.lstm_bwd_p, [g, outs, x, W, R], [0, 0, 0, None, None], parts=(), reverse=False, reset_after=True,
           last=False, wanted=(True, True, True, False, False, False))


@pytest.mark.parametrize("mapped_mask", [False, True])
def test_attention_rules(mapped_mask: bool) -> None:
    rng = np.random.default_rng(2)
    q, k, v = (rng.normal(size=(V, B, T, 2, 3)) for _ in range(3))
    mask = rng.random((V, 1, 1, T, T)) > 0.3 if mapped_mask else rng.random((1, 1, T, T)) > 0.3
    mask[..., 0] = True
    dims = [0, 0, 0, 0 if mapped_mask else None]
    _check(att.attention_p, [q, k, v, mask], dims, parts=("mask",), scale=0.5)
    qkv = rng.normal(size=(B, T, 3, 2, 3, V))  # mapped along the last axis
    _check(att.packed_attention_p, [qkv, mask], [5, dims[3]], parts=("mask",), scale=0.5)


def _numerical_jvp(f, inputs, tangents, eps=1e-6):
    plus = f(*[x + eps * t for x, t in zip(inputs, tangents)])
    minus = f(*[x - eps * t for x, t in zip(inputs, tangents)])
    return (plus - minus) / (2 * eps)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_jvp_rules_are_the_transposed_vjp(cell: str) -> None:
    rng = np.random.default_rng(3)
    k = rec.GATES[cell]
    x, W, R = rng.normal(size=(B, T, F)), rng.normal(size=(F, k * U)) * 0.5, rng.normal(size=(U, k * U)) * 0.5
    tangents = [rng.normal(size=a.shape) for a in (x, W, R)]
    params = {"parts": (), "reverse": False}
    prim = rec.PRIMITIVES[cell]
    out = prim(x, W, R, **params)
    got = JVP_RULES[prim](tangents, out, (x, W, R), params)
    want = _numerical_jvp(lambda *a: prim(*a, **params), [x, W, R], tangents)
    np.testing.assert_allclose(np.asarray(got.numpy()), want, rtol=1e-6, atol=1e-8)
    q, kk, v = (rng.normal(size=(B, T, 2, 3)) for _ in range(3))
    ts = [rng.normal(size=q.shape), None, rng.normal(size=v.shape)]
    a_params = {"parts": (), "scale": 0.5}
    out = att.attention_p(q, kk, v, **a_params)
    got = JVP_RULES[att.attention_p](ts, out, (q, kk, v), a_params)
    want = _numerical_jvp(lambda q, v: att.attention_p(q, kk, v, **a_params), [q, v], [ts[0], ts[2]])
    np.testing.assert_allclose(np.asarray(got.numpy()), want, rtol=1e-6, atol=1e-8)
