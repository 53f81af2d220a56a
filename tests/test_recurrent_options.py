"""Recurrent layers: masks (a padded, masked batch gives what each sequence gives alone, and
PyTorch's packed sequences agree), dropout and recurrent dropout (training vs inference,
Keras's masks reproduced), Bidirectional in every merge mode against PyTorch's
bidirectional modules, Rindow's call forms, configs and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sequence_oracles import numpy_recurrent, t, torch_grads_to_keras, torch_rnn

import tapegrad as tg
from tapegrad.nn import layers
from tapegrad.ops.recurrent_reference import reference_forward

F64 = "float64"
LAYERS = {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}
LENGTHS = [5, 3, 1, 4]


def _layer(cell: str, rng: np.random.Generator, features: int = 3, **kwargs: object) -> layers.RecurrentLayer:
    layer = LAYERS[cell](4, dtype=F64, **kwargs)
    layer(np.zeros((1, 2, features)))
    layer.set_weights([rng.normal(scale=0.6, size=w.shape) for w in layer.get_weights()])
    return layer


def _padded(rng: np.random.Generator, lengths: list[int], features: int = 3, pre: bool = False) -> tuple:
    steps = max(lengths)
    x = rng.normal(size=(len(lengths), steps, features))
    mask = np.zeros((len(lengths), steps), bool)
    for i, n in enumerate(lengths):
        if pre:
            mask[i, steps - n:] = True
        else:
            mask[i, :n] = True
    x[~mask] = 0.0
    return x, mask


# -- masks ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("pre", [False, True])
def test_masked_batch_equals_each_sequence_alone(cell: str, go_backwards: bool, pre: bool) -> None:
    rng = np.random.default_rng([len(cell), go_backwards, pre])
    layer = _layer(cell, rng, return_sequences=True, return_state=True, go_backwards=go_backwards)
    x, mask = _padded(rng, LENGTHS, pre=pre)
    out, states = layer(tg.Variable(x), mask=mask)
    assert out.mask is not None and np.array_equal(np.asarray(out.mask.numpy() if isinstance(
        out.mask, tg.Variable) else out.mask), mask)
    for i in range(len(LENGTHS)):
        real = x[i:i + 1][:, mask[i]]
        alone_out, alone_states = layer(real)
        for s, a in zip(states, alone_states):
            np.testing.assert_allclose(s.numpy()[i], a.numpy()[0], rtol=1e-12)
        # the outputs of the real steps, in processing order; a masked step repeats the held state
        got = out.numpy()[i]
        steps = np.flatnonzero(mask[i][::-1] if go_backwards else mask[i])
        np.testing.assert_allclose(got[steps], alone_out.numpy()[0], rtol=1e-12)
        held = np.zeros(4) if steps[0] > 0 else None
        for s in range(got.shape[0]):
            if s in steps:
                held = got[s]
            elif held is not None:
                np.testing.assert_allclose(got[s], held, rtol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_masked_final_states_and_gradients_match_torch_packed_sequences(cell: str) -> None:
    rng = np.random.default_rng(11)
    layer = _layer(cell, rng, return_state=True)
    x, mask = _padded(rng, LENGTHS)
    xv = tg.Variable(x)
    with tg.GradientTape() as tape:
        out, states = layer(xv, mask=mask)
        loss = tg.reduce_sum(tg.sin(out)) + sum(tg.reduce_sum(s * (k + 2.0)) for k, s in enumerate(states))
    grads = tape.gradient(loss, [xv, *layer.trainable_variables()])

    module = torch_rnn(cell, layer.get_weights())
    xt = t(x).requires_grad_(True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(LENGTHS), batch_first=True,
                                                     enforce_sorted=False)
    _, final = module(packed)
    finals = [final[0][0], final[1][0]] if cell == "lstm" else [final[0]]
    np.testing.assert_allclose(out.numpy(), finals[0].detach().numpy(), rtol=1e-12)
    loss_t = torch.sin(finals[0]).sum() + sum((s * (k + 2.0)).sum() for k, s in enumerate(finals))
    loss_t.backward()
    want = [xt.grad.numpy(), *torch_grads_to_keras(cell, module)]
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-9, atol=1e-12)


def test_mask_comes_from_the_embedding_and_an_explicit_mask_wins() -> None:
    rng = np.random.default_rng(12)
    emb = layers.Embedding(7, 3, mask_zero=True, dtype=F64)
    lstm = _layer("lstm", rng, return_sequences=True)
    ids = np.array([[3, 1, 4, 0, 0], [5, 0, 0, 0, 0]])
    vectors = emb(ids)
    out = lstm(vectors)
    np.testing.assert_array_equal(np.asarray(out.mask.numpy()), ids != 0)
    for i, n in enumerate([3, 1]):
        alone = lstm(vectors.numpy()[i:i + 1, :n])
        np.testing.assert_allclose(out.numpy()[i, :n], alone.numpy()[0], rtol=1e-12)
    explicit = np.ones_like(ids, bool)
    np.testing.assert_allclose(lstm(vectors, mask=explicit).numpy(), lstm(tg.Variable(vectors.numpy())).numpy(),
                               rtol=1e-12)
    last = layers.LSTM(4, dtype=F64)
    last(vectors)
    assert getattr(last(vectors), "mask", None) is None  # the time axis is gone


# -- dropout ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("recurrent", [False, True])
def test_dropout_in_training_reproduces_keras_masks(cell: str, recurrent: bool) -> None:
    rng = np.random.default_rng(13)
    rate, rec_rate, seed = 0.3, (0.4 if recurrent else 0.0), 99
    layer = _layer(cell, rng, return_sequences=True, dropout=rate, recurrent_dropout=rec_rate, seed=seed)
    x = rng.normal(size=(3, 5, 3))
    inference = layer(x).numpy()
    np.testing.assert_allclose(layer(x, training=False).numpy(), inference)
    plain = LAYERS[cell](4, return_sequences=True, dtype=F64)
    plain(x)
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(inference, plain(x).numpy(), rtol=1e-14)

    # the masks a fresh layer of the same seed draws: input mask first, then the recurrent one
    k = layer.gates if recurrent and cell != "simple_rnn" else 1
    draws = np.random.default_rng(seed)
    in_drop = (draws.random((3, k, 3)) >= rate) / (1 - rate)
    rec_drop = (draws.random((3, k, 4)) >= rec_rate) / (1 - rec_rate) if recurrent else None
    fresh = _layer(cell, rng, return_sequences=True, dropout=rate, recurrent_dropout=rec_rate, seed=seed)
    fresh.set_weights(layer.get_weights())
    xv = tg.Variable(x)
    with tg.GradientTape() as tape:
        trained = fresh(xv, training=True)
        loss = tg.reduce_sum(tg.sin(trained))
    grads = tape.gradient(loss, [xv, *fresh.trainable_variables()])
    want, _ = numpy_recurrent(cell, x, layer.get_weights(), in_drop=in_drop, rec_drop=rec_drop)
    np.testing.assert_allclose(trained.numpy(), want, rtol=1e-12)
    assert not np.allclose(trained.numpy(), inference)

    # gradients against the step-by-step reference with the same masks
    named = dict(x=tg.Variable(x), W=tg.Variable(layer.get_weights()[0]), R=tg.Variable(layer.get_weights()[1]),
                 b=tg.Variable(layer.get_weights()[2]), h0=None, c0=None, mask=None, in_drop=in_drop,
                 rec_drop=rec_drop)
    with tg.GradientTape() as tape:
        ref = reference_forward(cell, named, False)
        ref_loss = tg.reduce_sum(tg.sin(tg.transpose(ref[0] if cell == "lstm" else ref, (1, 0, 2))))
    ref_grads = tape.gradient(ref_loss, [named[n] for n in ("x", "W", "R", "b")])
    for g, w in zip(grads, ref_grads):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-10, atol=1e-12)


def test_dropout_draws_new_masks_at_every_call() -> None:
    rng = np.random.default_rng(14)
    layer = _layer("gru", rng, dropout=0.5)
    x = rng.normal(size=(4, 3, 3))
    a, b = layer(x, training=True).numpy(), layer(x, training=True).numpy()
    assert not np.allclose(a, b)


# -- Bidirectional ----------------------------------------------------------------------------------
def _bidirectional_torch(bi: layers.Bidirectional, cell: str, x: np.ndarray, lengths: list[int] | None = None):
    weights = bi.get_weights()
    half = len(weights) // 2
    module = torch_rnn(cell, weights[:half], weights[half:])
    xt = t(x).requires_grad_(True)
    inputs = xt if lengths is None else torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    seq, final = module(inputs)
    if lengths is not None:
        seq, _ = torch.nn.utils.rnn.pad_packed_sequence(seq, batch_first=True, total_length=x.shape[1])
    return module, xt, seq, final


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_matches_torch(merge_mode: str | None, cell: str) -> None:
    rng = np.random.default_rng(15)
    bi = layers.Bidirectional(LAYERS[cell](4, return_sequences=True, return_state=True), merge_mode=merge_mode,
                              dtype=F64)
    x = rng.normal(size=(3, 5, 3))
    bi(x)
    assert [w.name for w in bi.variables()][0].startswith("forward_")
    bi.set_weights([rng.normal(scale=0.6, size=w.shape) for w in bi.get_weights()])
    xv = tg.Variable(x)
    with tg.GradientTape() as tape:
        out, states = bi(xv)
        outs = out if merge_mode is None else [out]
        loss = sum(tg.reduce_sum(tg.sin(o)) for o in outs) + sum(tg.reduce_sum(s) * (k + 1.0)
                                                                for k, s in enumerate(states))
    grads = tape.gradient(loss, [xv, *bi.trainable_variables()])

    module, xt, seq, final = _bidirectional_torch(bi, cell, x)
    fwd, bwd = seq[..., :4], seq[..., 4:]
    merged = {"concat": [seq], "sum": [fwd + bwd], "mul": [fwd * bwd], "ave": [(fwd + bwd) / 2],
              None: [fwd, bwd]}[merge_mode]
    for o, m in zip(outs, merged):
        np.testing.assert_allclose(o.numpy(), m.detach().numpy(), rtol=1e-12)
    finals = [final[0][0], final[1][0], final[0][1], final[1][1]] if cell == "lstm" else [final[0], final[1]]
    for s, f in zip(states, finals):
        np.testing.assert_allclose(s.numpy(), f.detach().numpy(), rtol=1e-12)
    loss_t = sum(torch.sin(m).sum() for m in merged) + sum(f.sum() * (k + 1.0) for k, f in enumerate(finals))
    loss_t.backward()
    want = [xt.grad.numpy(), *torch_grads_to_keras(cell, module), *torch_grads_to_keras(cell, module, "_reverse")]
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-9, atol=1e-12)


def test_bidirectional_with_a_mask_matches_torch_packed_sequences() -> None:
    rng = np.random.default_rng(16)
    bi = layers.Bidirectional(layers.LSTM(4, return_sequences=True), dtype=F64)
    x, mask = _padded(rng, LENGTHS)
    bi(x)
    out = bi(x, mask=mask)
    _, _, seq, _ = _bidirectional_torch(bi, "lstm", x, LENGTHS)
    np.testing.assert_allclose(out.numpy(), seq.detach().numpy(), rtol=1e-12, atol=1e-14)  # zeros where masked
    np.testing.assert_array_equal(np.asarray(out.mask), mask)
    last = layers.Bidirectional(layers.GRU(4), merge_mode="sum", dtype=F64)
    last(x)
    for i, n in enumerate(LENGTHS):
        np.testing.assert_allclose(last(x, mask=mask).numpy()[i], last(x[i:i + 1, :n]).numpy()[0], rtol=1e-12)


def test_bidirectional_initial_states_and_a_custom_backward_layer() -> None:
    rng = np.random.default_rng(17)
    fwd = layers.GRU(4, return_state=True)
    bwd = layers.GRU(4, return_state=True, go_backwards=True, name="my_backward")
    bi = layers.Bidirectional(fwd, backward_layer=bwd, dtype=F64)
    x = rng.normal(size=(2, 3, 3))
    states = [rng.normal(size=(2, 4)), rng.normal(size=(2, 4))]
    out, (h_f, h_b) = bi(x, initial_states=states)
    assert out.shape == (2, 8) and bi.backward_layer is bwd
    np.testing.assert_allclose(h_f.numpy(), bi.forward_layer(x, initial_states=states[:1])[1][0].numpy())
    np.testing.assert_allclose(h_b.numpy(), bwd(x, initial_states=states[1:])[1][0].numpy())
    with pytest.raises(ValueError, match="initial_states must be a list of 2"):
        bi(x, initial_states=states[:1])
    with pytest.raises(ValueError, match="different go_backwards"):
        layers.Bidirectional(fwd, backward_layer=layers.GRU(4, return_state=True))
    with pytest.raises(TypeError, match="SimpleRNN, LSTM or GRU"):
        layers.Bidirectional(layers.Dense(3))
    with pytest.raises(ValueError, match="merge_mode"):
        layers.Bidirectional(fwd, merge_mode="max")


# -- call forms, configs, errors --------------------------------------------------------------------
def test_rindow_positional_call_and_keras_spelling() -> None:
    rng = np.random.default_rng(18)
    layer = _layer("lstm", rng, return_state=True)
    x = rng.normal(size=(2, 3, 3))
    h0, c0 = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    a, states_a = layer(x, False, [h0, c0])  # Rindow: forward($x, $training, $initialStates)
    b, states_b = layer.forward(x, initial_state=[h0, c0])  # Keras's spelling
    np.testing.assert_allclose(a.numpy(), b.numpy())
    assert isinstance(states_a, list) and len(states_a) == 2
    with pytest.raises(ValueError, match="not both"):
        layer(x, initial_states=[h0, c0], initial_state=[h0, c0])


def test_sequence_length_may_change_and_features_may_not() -> None:
    rng = np.random.default_rng(19)
    layer = _layer("gru", rng)
    assert layer.input_shape == (None, 3)
    assert layer(rng.normal(size=(2, 7, 3))).shape == (2, 4)
    with pytest.raises(ValueError, match="expected inputs of shape"):
        layer(rng.normal(size=(2, 7, 5)))


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_config_round_trip(cell: str) -> None:
    layer = LAYERS[cell](5, return_sequences=True, go_backwards=True, dropout=0.25, seed=3, name=f"my_{cell}")
    config = layer.get_config()
    clone = layers.deserialize(layers.serialize(layer))
    assert type(clone) is type(layer) and clone.get_config() == config
    if cell == "lstm":
        x = np.zeros((1, 2, 3))
        layer(x)
        bias = layer.bias.numpy()
        np.testing.assert_array_equal(bias[5:10], 1.0)  # unit_forget_bias
        np.testing.assert_array_equal(np.delete(bias, np.s_[5:10]), 0.0)
    bi = layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode="ave")
    clone = layers.deserialize(layers.serialize(bi))
    assert clone.get_config() == bi.get_config()


def test_bad_arguments_name_the_layer_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"LSTM 'lstm_bad': units must be a positive int.*, got 0"):
        layers.LSTM(0, name="lstm_bad")
    with pytest.raises(ValueError, match="dropout must be in"):
        layers.GRU(3, dropout=1.0)
    with pytest.raises(TypeError, match="return_sequences must be True or False"):
        layers.SimpleRNN(3, return_sequences="yes")
    with pytest.raises(ValueError, match=r"rnn_y: LSTM takes inputs of shape \(batch, time, features\)"):
        layers.LSTM(3, name="rnn_y")(np.zeros((2, 5)))
    layer = layers.LSTM(3, dtype=F64, name="rnn_x")
    x = np.zeros((2, 4, 5))
    layer(x)
    with pytest.raises(ValueError, match=r"initial_states must be a list \[h, c\] of 2"):
        layer(x, initial_states=[np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"initial_states\[1\] has shape \(2, 4\), expected \(batch, units\) = "
                                         r"\(2, 3\)"):
        layer(x, initial_states=[np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match=r"mask has shape \(2, 3\), expected \(batch, time\) = \(2, 4\)"):
        layer(x, mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="no time steps"):
        layer(np.zeros((2, 0, 5)))
