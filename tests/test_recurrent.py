"""SimpleRNN, LSTM and GRU against PyTorch (float64, Keras weights mapped as in
docs/sequences.md): outputs, final states and the gradients of the input, every
weight and the initial states, for return_sequences, return_state, go_backwards,
initial_states and use_bias; GRU with reset_after=False and non-default activations
against a NumPy reference; the fused primitive against its step-by-step reference; one
Hessian-vector product."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sequence_oracles import numpy_recurrent, t, torch_grads_to_keras, torch_rnn

import tapegrad as tg
from tapegrad.nn import layers

F64 = "float64"
B, T, F, U = 3, 5, 4, 6
LAYERS = {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}


def _random_weights(layer: layers.RecurrentLayer, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()]


def _run_tapegrad(layer: layers.RecurrentLayer, x: np.ndarray, states: list[np.ndarray] | None,
                  upstream: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    xv = tg.Variable(x)
    sv = [tg.Variable(s) for s in states] if states else None
    with tg.GradientTape() as tape:
        out, final = layer(xv, initial_states=sv)
        results = [out, *final]
        loss = sum(tg.reduce_sum(r * w) for r, w in zip(results, upstream))
    sources = [xv, *layer.trainable_variables(), *(sv or [])]
    grads = tape.gradient(loss, sources)
    return [r.numpy() for r in results], [g.numpy() for g in grads]


def _run_torch(cell: str, layer: layers.RecurrentLayer, x: np.ndarray, states: list[np.ndarray] | None,
               upstream: list[np.ndarray], go_backwards: bool, return_sequences: bool) -> tuple[list, list]:
    module = torch_rnn(cell, layer.get_weights(), use_bias=layer.use_bias)
    xt = t(x).requires_grad_(True)
    st = [t(s)[None].requires_grad_(True) for s in states] if states else []
    inputs = torch.flip(xt, [1]) if go_backwards else xt
    if cell == "lstm":
        seq, (h, c) = module(inputs, tuple(st) if st else None)
        finals = [h[0], c[0]]
    else:
        seq, h = module(inputs, st[0] if st else None)
        finals = [h[0]]
    out = seq if return_sequences else seq[:, -1]
    results = [out, *finals]
    loss = sum((r * t(w)).sum() for r, w in zip(results, upstream))
    loss.backward()
    grads = [xt.grad.numpy(), *torch_grads_to_keras(cell, module, use_bias=layer.use_bias)]
    grads += [s.grad[0].numpy() for s in st]
    return [r.detach().numpy() for r in results], grads


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("initial", [False, True])
def test_outputs_states_and_gradients_match_torch(cell: str, return_sequences: bool, go_backwards: bool,
                                                   initial: bool) -> None:
    rng = np.random.default_rng([len(cell), return_sequences, go_backwards, initial])
    layer = LAYERS[cell](U, return_sequences=return_sequences, return_state=True, go_backwards=go_backwards,
                         dtype=F64)
    x = rng.normal(size=(B, T, F))
    layer(x)
    layer.set_weights(_random_weights(layer, rng))
    states = [rng.normal(size=(B, U)) for _ in range(layer.state_count)] if initial else None
    out_shape = (B, T, U) if return_sequences else (B, U)
    upstream = [rng.normal(size=out_shape)] + [rng.normal(size=(B, U)) for _ in range(layer.state_count)]
    got, got_grads = _run_tapegrad(layer, x, states, upstream)
    want, want_grads = _run_torch(cell, layer, x, states, upstream, go_backwards, return_sequences)
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    assert len(got_grads) == len(want_grads)
    for g, w in zip(got_grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_without_bias_and_without_return_state(cell: str) -> None:
    rng = np.random.default_rng(7)
    layer = LAYERS[cell](U, use_bias=False, return_sequences=True, dtype=F64)
    x = rng.normal(size=(B, T, F))
    out = layer(x)
    assert isinstance(out, tg.Variable) and out.shape == (B, T, U) and len(layer.get_weights()) == 2
    module = torch_rnn(cell, layer.get_weights(), use_bias=False)
    np.testing.assert_allclose(out.numpy(), module(t(x))[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    last = LAYERS[cell](U, use_bias=False, dtype=F64)
    last(x)
    last.set_weights(layer.get_weights())
    np.testing.assert_allclose(last(x).numpy(), out.numpy()[:, -1], rtol=1e-12)


def test_gru_reset_before_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    layer = layers.GRU(U, reset_after=False, return_sequences=True, return_state=True, go_backwards=True, dtype=F64)
    x = rng.normal(size=(B, T, F))
    layer(x)
    assert layer.bias.shape == (3 * U,)
    layer.set_weights(_random_weights(layer, rng))
    h0 = rng.normal(size=(B, U))
    out, (h,) = layer(x, initial_states=[h0])
    want, (want_h,) = numpy_recurrent("gru", x[:, ::-1], layer.get_weights(), reset_after=False, h0=h0)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(h.numpy(), want_h, rtol=1e-12)
    tg.gradcheck(lambda xv, hv: layer(xv, initial_states=[hv])[0], [x, h0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_other_activations_run_the_step_by_step_path(cell: str) -> None:
    rng = np.random.default_rng(4)
    layer = LAYERS[cell](U, activation="relu", recurrent_activation="sigmoid", return_sequences=True, dtype=F64)
    x = rng.normal(size=(B, T, F))
    layer(x)
    assert not layer._fused
    weights = _random_weights(layer, rng)
    layer.set_weights(weights)
    want, _ = numpy_recurrent(cell, x, weights, activation=lambda z: np.maximum(z, 0))
    np.testing.assert_allclose(layer(x).numpy(), want, rtol=1e-12)
    tg.gradcheck(lambda xv: layer(xv), [x])


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_hessian_vector_product_matches_torch(cell: str) -> None:
    rng = np.random.default_rng(5)
    layer = LAYERS[cell](3, return_sequences=True, dtype=F64)
    x = rng.normal(size=(2, 4, 3))
    layer(x)
    layer.set_weights(_random_weights(layer, rng))
    direction = [rng.normal(size=w.shape) for w in layer.get_weights()]
    weights = layer.trainable_variables()
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            loss = tg.reduce_sum(tg.sin(layer(x)))
        grads = inner.gradient(loss, weights)
        projected = sum(tg.reduce_sum(g * d) for g, d in zip(grads, direction))
    hvp = [h.numpy() for h in outer.gradient(projected, weights)]

    module = torch_rnn(cell, layer.get_weights())
    params = [p for p in module.parameters()]
    loss_t = torch.sin(module(t(x))[0]).sum()
    grads_t = torch.autograd.grad(loss_t, params, create_graph=True)
    # the direction in torch's layouts: the same mapping as the weights
    direction_t = [p.detach().clone() for p in torch_rnn(cell, direction).parameters()]
    if cell != "gru":  # Keras has one bias, mapped to torch's first: the second one stays 0
        direction_t[3].zero_()
    projected_t = sum((g * d).sum() for g, d in zip(grads_t, direction_t))
    hvp_t = torch.autograd.grad(projected_t, params)
    for p, h in zip(params, hvp_t):
        p.grad = h
    want = torch_grads_to_keras(cell, module)
    for got, expected in zip(hvp, want):
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_second_derivatives_match_numerical_ones(cell: str, return_sequences: bool) -> None:
    rng = np.random.default_rng(6)
    layer = LAYERS[cell](2, return_sequences=return_sequences, go_backwards=True, dtype=F64)
    x = rng.normal(size=(2, 3, 2))
    layer(x)
    layer.set_weights(_random_weights(layer, rng))
    h0 = rng.normal(size=(2, 2))
    mask = np.array([[True, True, False], [False, True, True]])
    states = (lambda h: [h, h * 0.5]) if cell == "lstm" else (lambda h: [h])
    tg.gradcheck(lambda xv, hv: layer(xv, initial_states=states(hv), mask=mask), [x, h0], order=2)


def test_float32_layer_keeps_float32_and_is_close_to_float64() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(B, T, F))
    l64 = layers.LSTM(U, return_sequences=True, dtype=F64)
    l32 = layers.LSTM(U, return_sequences=True)
    l64(x)
    l32(x.astype(np.float32))
    l32.set_weights(l64.get_weights())
    y32 = l32(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32.numpy(), l64(x).numpy(), rtol=1e-5, atol=1e-6)
