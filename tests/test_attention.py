"""MultiHeadAttention against torch.nn.MultiheadAttention (float64, Keras weights mapped in:
in_proj = the query/key/value kernels reshaped to (d, heads*dim) and transposed, out_proj =
the output kernel reshaped to (heads*dim, d) and transposed): outputs, scores and gradients
with key padding, causal and explicit attention masks; Attention (Luong) against NumPy;
Rindow's list call form; dropout; second derivatives; compiled equals eager; save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compiled_check import assert_compiled_matches_eager
from sequence_oracles import t

import tapegrad as tg
from tapegrad.nn import layers

F64 = "float64"
B, T, S, H, K = 3, 4, 5, 2, 3
D = H * K


def _mha(rng: np.random.Generator, **kwargs: object) -> layers.MultiHeadAttention:
    layer = layers.MultiHeadAttention(H, K, dtype=F64, **kwargs)
    layer(np.zeros((1, 2, D)), np.zeros((1, 3, D)))
    layer.set_weights([rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()])
    return layer


def _torch_mha(layer: layers.MultiHeadAttention) -> torch.nn.MultiheadAttention:
    Wq, bq, Wk, bk, Wv, bv, Wo, bo = layer.get_weights()
    module = torch.nn.MultiheadAttention(D, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        module.in_proj_weight.copy_(t(np.concatenate([w.reshape(D, D) for w in (Wq, Wk, Wv)], axis=1).T))
        module.in_proj_bias.copy_(t(np.concatenate([b.ravel() for b in (bq, bk, bv)])))
        module.out_proj.weight.copy_(t(Wo.reshape(D, D).T))
        module.out_proj.bias.copy_(t(bo))
    return module


def _torch_grads(module: torch.nn.MultiheadAttention) -> list[np.ndarray]:
    wi, bi = module.in_proj_weight.grad.numpy().T, module.in_proj_bias.grad.numpy()
    out = []
    for j in range(3):
        out += [wi[:, j * D:(j + 1) * D].reshape(D, H, K), bi[j * D:(j + 1) * D].reshape(H, K)]
    return out + [module.out_proj.weight.grad.numpy().T.reshape(H, K, D), module.out_proj.bias.grad.numpy()]


@pytest.mark.parametrize("masking", ["none", "padding", "causal", "attention_mask"])
def test_multi_head_attention_matches_torch(masking: str) -> None:
    rng = np.random.default_rng(len(masking))
    layer = _mha(rng)
    q, v = rng.normal(size=(B, T, D)), rng.normal(size=(B, S, D))
    value_mask = np.ones((B, S), bool)
    value_mask[0, 3:] = False
    value_mask[2, :2] = False
    qv, vv = tg.Variable(q), tg.Variable(v)
    kwargs: dict = {}
    torch_kwargs: dict = {}
    if masking == "padding":
        vv.mask = value_mask
        # (as an attn_mask: torch's first key_padding_mask call takes ~1 s to set itself up)
        torch_kwargs["attn_mask"] = torch.from_numpy(np.repeat(np.broadcast_to(~value_mask[:, None], (B, T, S)), H,
                                                               axis=0))
    elif masking == "causal":
        kwargs["use_causal_mask"] = True
        torch_kwargs["attn_mask"] = torch.from_numpy(~np.tril(np.ones((T, S), bool)))
    elif masking == "attention_mask":
        allowed = rng.random((B, T, S)) > 0.4
        allowed[..., 1] = True
        kwargs["attention_mask"] = allowed
        torch_kwargs["attn_mask"] = torch.from_numpy(np.repeat(~allowed, H, axis=0))
    weights = rng.normal(size=(B, T, D))
    with tg.GradientTape() as tape:
        out, scores = layer(qv, vv, return_attention_scores=True, **kwargs)
        loss = tg.reduce_sum(out * weights) + tg.reduce_sum(tg.square(scores))
    grads = tape.gradient(loss, [qv, vv, *layer.trainable_variables()])

    module = _torch_mha(layer)
    qt, vt = t(q).requires_grad_(True), t(v).requires_grad_(True)
    out_t, scores_t = module(qt, vt, vt, need_weights=True, average_attn_weights=False, **torch_kwargs)
    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(scores.numpy(), scores_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    ((out_t * t(weights)).sum() + (scores_t ** 2).sum()).backward()
    want = [qt.grad.numpy(), vt.grad.numpy(), *_torch_grads(module)]
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-9, atol=1e-11)
    # the fused path (no scores asked for): the same output and gradients
    with tg.GradientTape() as tape:
        fused = layer(qv, vv, **kwargs)
        loss = tg.reduce_sum(fused * weights)
    grads = tape.gradient(loss, [qv, vv, *layer.trainable_variables()])
    np.testing.assert_allclose(fused.numpy(), out.numpy(), rtol=1e-12)
    module = _torch_mha(layer)
    qt, vt = t(q).requires_grad_(True), t(v).requires_grad_(True)
    (module(qt, vt, vt, need_weights=False, **torch_kwargs)[0] * t(weights)).sum().backward()
    for g, w in zip(grads, [qt.grad.numpy(), vt.grad.numpy(), *_torch_grads(module)]):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-9, atol=1e-11)


def test_self_attention_takes_one_product_and_matches_torch() -> None:
    rng = np.random.default_rng(10)
    layer = _mha(rng)
    x = rng.normal(size=(B, T, D))
    xv = tg.Variable(x)
    weights = rng.normal(size=(B, T, D))
    with tg.GradientTape() as tape:
        out = layer(xv, xv, use_causal_mask=True)
        loss = tg.reduce_sum(out * weights)
    grads = tape.gradient(loss, [xv, *layer.trainable_variables()])
    module = _torch_mha(layer)
    xt = t(x).requires_grad_(True)
    causal = torch.from_numpy(~np.tril(np.ones((T, T), bool)))
    out_t = module(xt, xt, xt, need_weights=False, attn_mask=causal)[0]
    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    (out_t * t(weights)).sum().backward()
    for g, w in zip(grads, [xt.grad.numpy(), *_torch_grads(module)]):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-9, atol=1e-11)


def test_query_mask_passes_on_and_padded_queries_equal_unpadded_ones() -> None:
    rng = np.random.default_rng(1)
    layer = _mha(rng)
    x = rng.normal(size=(2, 5, D))
    mask = np.array([[True] * 5, [True, True, True, False, False]])
    xv = tg.Variable(x)
    xv.mask = mask
    out = layer(xv, xv)  # self-attention: masked queries and keys
    np.testing.assert_array_equal(np.asarray(out.mask), mask)
    alone = layer(x[1:, :3], x[1:, :3]).numpy()[0]
    np.testing.assert_allclose(out.numpy()[1, :3], alone, rtol=1e-10)
    explicit = layer([xv, xv], mask=[np.ones_like(mask), np.ones_like(mask)])  # an explicit mask wins
    np.testing.assert_allclose(explicit.numpy(), layer(x, x).numpy(), rtol=1e-12)


def test_rindow_list_form_and_keras_form_agree() -> None:
    rng = np.random.default_rng(2)
    layer = _mha(rng, dropout=0.3)
    q, v, k = rng.normal(size=(2, 3, D)), rng.normal(size=(2, 4, D)), rng.normal(size=(2, 4, D))
    keras = layer(q, v, key=k, use_causal_mask=True).numpy()
    rindow = layer.forward([q, v, k], False, use_causal_mask=True).numpy()
    np.testing.assert_allclose(rindow, keras)
    out, scores = layer([q, v, k], training=False, return_attention_scores=True, use_causal_mask=True)
    assert isinstance(out, tg.Variable) and scores.shape == (2, H, 3, 4)
    np.testing.assert_allclose(np.triu(scores.numpy(), 1), 0.0)  # causal
    with pytest.raises(TypeError, match="give value and key inside the list"):
        layer([q, v], v)
    with pytest.raises(TypeError, match="needs a value"):
        layer(q)


def test_value_dim_key_dim_and_output_shape() -> None:
    rng = np.random.default_rng(3)
    layer = layers.MultiHeadAttention(2, 3, value_dim=5, output_shape=7, use_bias=False, dtype=F64)
    q, v, k = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 6, 8)), rng.normal(size=(2, 6, 9))
    out = layer(q, v, k)
    assert out.shape == (2, 3, 7)
    assert [w.shape for w in layer.get_weights()] == [(4, 2, 3), (9, 2, 3), (8, 2, 5), (2, 5, 7)]
    Wq, Wk, Wv, Wo = layer.get_weights()
    qh, kh, vh = np.einsum("btd,dhk->bhtk", q, Wq), np.einsum("bsd,dhk->bhsk", k, Wk), np.einsum("bsd,dhk->bhsk", v, Wv)
    s = qh @ kh.swapaxes(-1, -2) / np.sqrt(3)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    want = np.einsum("bhtk,hko->bto", p @ vh, Wo)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    tg.gradcheck(lambda a, b, c: layer(a, b, c), [q[:1, :2], v[:1, :3], k[:1, :3]], order=2)


def test_multi_head_attention_dropout() -> None:
    rng = np.random.default_rng(4)
    layer = _mha(rng, dropout=0.5, seed=5)
    q, v = rng.normal(size=(2, 3, D)), rng.normal(size=(2, 4, D))
    plain = _mha(np.random.default_rng(4))
    np.testing.assert_allclose(layer(q, v).numpy(), plain(q, v).numpy())  # inference: no dropout
    trained = layer(q, v, training=True).numpy()
    drop = (np.random.default_rng(5).random((2, H, 3, 4)) >= 0.5) / 0.5
    Wq, bq, Wk, bk, Wv, bv, Wo, bo = layer.get_weights()
    qh = np.einsum("btd,dhk->bhtk", q, Wq) + bq[:, None]
    kh = np.einsum("bsd,dhk->bhsk", v, Wk) + bk[:, None]
    vh = np.einsum("bsd,dhk->bhsk", v, Wv) + bv[:, None]
    s = qh @ kh.swapaxes(-1, -2) / np.sqrt(K)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    want = np.einsum("bhtk,hko->bto", (p * drop) @ vh, Wo) + bo
    np.testing.assert_allclose(trained, want, rtol=1e-12)
    assert not np.allclose(layer(q, v, training=True).numpy(), trained)  # a new mask at every call
    # self-attention (one product for q, k and v) draws the same masks
    seeded = _mha(np.random.default_rng(4), dropout=0.5, seed=6)
    drop = (np.random.default_rng(6).random((2, H, 3, 3)) >= 0.5) / 0.5
    qh, kh, vh = (np.einsum("btd,dhk->bhtk", q, w) + b[:, None] for w, b in ((Wq, bq), (Wk, bk), (Wv, bv)))
    s = qh @ kh.swapaxes(-1, -2) / np.sqrt(K)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    want = np.einsum("bhtk,hko->bto", (p * drop) @ vh, Wo) + bo
    np.testing.assert_allclose(seeded(q, q, training=True).numpy(), want, rtol=1e-12)


def test_multi_head_attention_compiled_equals_eager() -> None:
    rng = np.random.default_rng(6)
    layer = _mha(rng)

    def fn(q, v, mask):
        v = tg.nop(v)
        v.mask = mask
        return layer(q, v, use_causal_mask=True)

    def args(steps: int) -> list:
        mask = np.ones((2, steps), bool)
        mask[0, -1] = False
        return [rng.normal(size=(2, steps, D)), rng.normal(size=(2, steps, D)), mask]

    compiled = assert_compiled_matches_eager(fn, args(4), args(4), order=2)
    other = args(6)
    np.testing.assert_allclose(compiled(*other).numpy(), fn(*other).numpy(), rtol=1e-12)


# -- Attention (Luong) ------------------------------------------------------------------------------
def _luong(q: np.ndarray, v: np.ndarray, k: np.ndarray, scale: float | None, concat: float | None,
           q_mask: np.ndarray | None, v_mask: np.ndarray | None, causal: bool) -> tuple[np.ndarray, np.ndarray]:
    if concat is None:
        s = q @ k.swapaxes(-1, -2) * (1.0 if scale is None else scale)
    else:
        s = concat * np.tanh((1.0 if scale is None else scale) * (q[:, :, None] + k[:, None])).sum(-1)
    allowed = np.ones(s.shape, bool)
    if v_mask is not None:
        allowed &= v_mask[:, None, :]
    if causal:
        allowed &= np.tril(np.ones(s.shape[1:], bool))
    s = s - 1e9 * ~allowed
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    out = p @ v
    if q_mask is not None:
        out = out * q_mask[..., None]
    return out, p


@pytest.mark.parametrize("score_mode", ["dot", "concat"])
@pytest.mark.parametrize("use_scale", [False, True])
def test_attention_matches_numpy(score_mode: str, use_scale: bool) -> None:
    rng = np.random.default_rng([len(score_mode), use_scale])
    layer = layers.Attention(use_scale=use_scale, score_mode=score_mode, dtype=F64)
    q, v, k = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 4))
    layer([q, v, k])
    weights = [rng.uniform(0.5, 1.5, size=w.shape) for w in layer.get_weights()]
    layer.set_weights(weights)
    scale = weights[0] if use_scale else None
    concat = weights[-1] if score_mode == "concat" else None
    q_mask, v_mask = np.array([[1, 1, 0], [1, 1, 1]], bool), np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]], bool)
    out, scores = layer([q, v, k], mask=[q_mask, v_mask], return_attention_scores=True, use_causal_mask=True)
    want, want_scores = _luong(q, v, k, scale, concat, q_mask, v_mask, True)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(scores.numpy(), want_scores, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(np.asarray(out.mask), q_mask)
    tg.gradcheck(lambda a, b, c: layer([a, b, c], mask=[q_mask, v_mask]), [q, v, k], order=2)
    if use_scale:  # the trainable scale's gradient against central differences
        w = rng.normal(size=(2, 3, 4))
        with tg.GradientTape() as tape:
            loss = tg.reduce_sum(layer([q, v]) * w)
        grad = float(tape.gradient(loss, layer.scale))
        base, eps = float(layer.scale), 1e-6
        values = []
        for s in (base + eps, base - eps):
            layer.scale.assign(np.array(s))
            values.append(float(tg.reduce_sum(layer([q, v]) * w)))
        np.testing.assert_allclose(grad, (values[0] - values[1]) / (2 * eps), rtol=1e-6)


def test_attention_takes_masks_from_its_inputs_and_key_defaults_to_value() -> None:
    rng = np.random.default_rng(7)
    layer = layers.Attention(dtype=F64)
    q, v = tg.Variable(rng.normal(size=(2, 3, 4))), tg.Variable(rng.normal(size=(2, 5, 4)))
    v.mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    want, _ = _luong(q.numpy(), v.numpy(), v.numpy(), None, None, None, v.mask, False)
    np.testing.assert_allclose(layer([q, v]).numpy(), want, rtol=1e-12)
    with pytest.raises(TypeError, match="takes a list"):
        layer(q)
    with pytest.raises(ValueError, match=r"mask\[1\] has shape \(2, 4\), expected \(batch, time\) = \(2, 5\)"):
        layer([q, v], mask=[None, np.ones((2, 4), bool)])


def test_attention_dropout_only_in_training() -> None:
    rng = np.random.default_rng(8)
    layer = layers.Attention(dropout=0.5, seed=1, dtype=F64)
    q, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4))
    want, p = _luong(q, v, v, None, None, None, None, False)
    np.testing.assert_allclose(layer([q, v]).numpy(), want, rtol=1e-12)
    out, dropped = layer([q, v], training=True, return_attention_scores=True)
    drop = (np.random.default_rng(1).random((2, 3, 5)) >= 0.5) / 0.5
    np.testing.assert_allclose(dropped.numpy(), p * drop, rtol=1e-12)
    np.testing.assert_allclose(out.numpy(), (p * drop) @ v, rtol=1e-12)


# -- saving, errors ---------------------------------------------------------------------------------
@tg.register_model
class TinyEncoder(tg.AbstractModel):
    def __init__(self, builder, vocab=9, d=6):
        super().__init__(builder)
        self.vocab, self.d = vocab, d
        self.embedding = builder.layers.Embedding(vocab, d, mask_zero=True)
        self.mha = builder.layers.MultiHeadAttention(2, 3)
        self.attention = builder.layers.Attention(use_scale=True)
        self.norm = builder.layers.LayerNormalization()
        self.head = builder.layers.Dense(vocab)

    def call(self, inputs, training=None):
        x = self.embedding(inputs)
        x = self.norm(builder_add(x, self.mha(x, x, training=training)))
        return self.head(self.attention([x, x], training=training))

    def get_config(self):
        return {"vocab": self.vocab, "d": self.d}


def builder_add(a, b):
    return layers.Add()([a, b])


def test_models_with_attention_layers_save_and_load(tmp_path) -> None:
    rng = np.random.default_rng(9)
    nn = tg.NeuralNetworks()
    model = TinyEncoder(nn)
    ids = rng.integers(1, 9, size=(16, 5))
    ids[::2, 3:] = 0
    model.compile(optimizer="adam", loss=nn.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(ids, ids, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "enc.tgm")
    loaded = tg.load_model(tmp_path / "enc.tgm")
    np.testing.assert_array_equal(loaded.predict(ids), model.predict(ids))
    for layer in (layers.MultiHeadAttention(2, 3, value_dim=4, output_shape=(5,), dropout=0.1, name="m"),
                  layers.Attention(use_scale=True, score_mode="concat", dropout=0.2, name="a")):
        clone = layers.deserialize(layers.serialize(layer))
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()


def test_bad_arguments_name_the_layer() -> None:
    with pytest.raises(ValueError, match=r"MultiHeadAttention 'mha_x': num_heads must be a positive int.*, got 0"):
        layers.MultiHeadAttention(0, 4, name="mha_x")
    with pytest.raises(ValueError, match="score_mode must be 'dot' or 'concat'"):
        layers.Attention(score_mode="add")
    layer = layers.MultiHeadAttention(2, 2, name="mha_y")
    with pytest.raises(ValueError, match=r"mha_y: attention_mask has shape \(2, 3, 3\), expected \(batch, T, S\) = "
                                         r"\(2, 3, 4\)"):
        layer(np.zeros((2, 3, 4)), np.zeros((2, 4, 4)), attention_mask=np.ones((2, 3, 3), bool))
    with pytest.raises(ValueError, match="mha_y: expected inputs of shape"):
        layer(np.zeros((2, 3, 5)), np.zeros((2, 4, 4)))


def test_rindow_translation_with_attention_flow() -> None:
    """Rindow's neural-machine-translation-with-attention: GRU encoder states start the GRU
    decoder, Attention([decoder sequence, encoder outputs]) takes both masks from its inputs."""
    rng = np.random.default_rng(11)
    nn = tg.NeuralNetworks(dtype=F64)
    L = nn.layers
    enc_emb, dec_emb = L.Embedding(9, 4, mask_zero=True), L.Embedding(9, 4, mask_zero=True)
    enc_rnn = L.GRU(5, return_state=True, return_sequences=True, recurrent_initializer="glorot_uniform")
    dec_rnn = L.GRU(5, return_state=True, return_sequences=True)
    attention, concat, dense = L.Attention(), L.Concatenate(), L.Dense(9)
    source = np.array([[3, 4, 5, 0, 0], [6, 2, 0, 0, 0]])
    target = np.array([[1, 7, 8, 2], [1, 3, 0, 0]])

    def forward(src, tgt):
        enc_out, states = enc_rnn(enc_emb(src))
        seq, _ = dec_rnn(dec_emb(tgt), initial_states=states)
        context, weights = attention([seq, enc_out], return_attention_scores=True)
        return dense(concat([context, seq])), weights

    logits, weights = forward(source, target)
    np.testing.assert_allclose(weights.numpy()[:, :, 3:], 0.0, atol=1e-300)  # padded source steps
    np.testing.assert_allclose(weights.numpy()[1, :, 2], 0.0, atol=1e-300)
    np.testing.assert_array_equal(np.asarray(logits.mask.numpy()), target != 0)
    labels = rng.integers(1, 9, target.shape)
    lossf = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    per_step = nn.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(
        labels, tg.Variable(logits.numpy())).numpy()
    np.testing.assert_allclose(float(lossf(labels, logits)), per_step[target != 0].mean(), rtol=1e-12)
    params = [v for lay in (enc_emb, dec_emb, enc_rnn, dec_rnn, dense) for v in lay.trainable_variables()]

    def step(src, tgt, lab):
        with tg.GradientTape() as tape:
            loss = lossf(lab, forward(src, tgt)[0])
        return [loss, *tape.gradient(loss, params)]

    compiled = tg.Function(step)
    other = np.array([[2, 0, 0, 0, 0], [4, 4, 4, 4, 4]])
    for src in (source, other, source):
        for got, want in zip(compiled(src, target, labels), step(src, target, labels)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-11, atol=1e-14)
