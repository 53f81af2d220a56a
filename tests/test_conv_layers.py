"""Convolution, pooling and resizing layers: values and gradients against PyTorch, output
shapes and parameter counts, configs, save/load round trips, compiled == eager, errors."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import Variable, layers

torch = pytest.importorskip("torch")
F = torch.nn.functional
RNG = np.random.default_rng(11)
TOL = {"rtol": 1e-10, "atol": 1e-11}


def T(a: Any) -> Any:
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64)


def nchw(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, -1, 1)


def nhwc(x: Any) -> np.ndarray:
    return np.moveaxis(x.detach().numpy(), 1, -1)


def oihw(k: np.ndarray) -> np.ndarray:
    """Keras kernel (*window, in, out) -> torch (out, in, *window)."""
    return np.moveaxis(np.moveaxis(k, -1, 0), -1, 1)


def test_conv2d_layer_matches_torch_values_and_gradients() -> None:
    x = RNG.normal(size=(3, 8, 7, 4))
    layer = layers.Conv2D(6, (3, 2), strides=(2, 1), padding="same", groups=2, activation="relu", dtype="float64",
                          bias_initializer="random_normal")
    xv = Variable(x)
    with tg.GradientTape() as tape:
        y = layer(xv)
        loss = tg.reduce_sum(y * y)
    kernel, bias = layer.kernel, layer.bias
    assert kernel.shape == (3, 2, 2, 6) and bias.shape == (6,)
    gx, gk, gb = tape.gradient(loss, [xv, kernel, bias])

    tx, tk, tb = (T(a).requires_grad_() for a in (nchw(x), oihw(kernel.value()), bias.value()))
    # Keras' same padding here: rows 8 -> 4 outputs with stride 2 need 1 padded row (at the end), columns 1 (end)
    ty = torch.relu(F.conv2d(F.pad(tx, (0, 1, 0, 1)), tk, tb, stride=(2, 1), groups=2))
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.value(), nhwc(ty), **TOL)
    np.testing.assert_allclose(gx.value(), nhwc(tx.grad), **TOL)
    np.testing.assert_allclose(gk.value(), np.moveaxis(np.moveaxis(tk.grad.numpy(), 1, -1), 0, -1), **TOL)
    np.testing.assert_allclose(gb.value(), tb.grad.numpy(), **TOL)


def test_channels_first_layers_match_channels_last() -> None:
    x = RNG.normal(size=(2, 6, 5, 3))
    pairs = [
        (layers.Conv2D(4, 3, padding="same", dtype="float64"), layers.Conv2D(4, 3, padding="same", dtype="float64",
                                                                              data_format="channels_first")),
        (layers.Conv2DTranspose(2, 3, strides=2, dtype="float64"),
         layers.Conv2DTranspose(2, 3, strides=2, dtype="float64", data_format="channels_first")),
        (layers.MaxPooling2D(2, padding="same"), layers.MaxPooling2D(2, padding="same", data_format="channels_first")),
        (layers.AveragePooling2D(3, 1), layers.AveragePooling2D(3, 1, data_format="channels_first")),
        (layers.UpSampling2D((2, 3)), layers.UpSampling2D((2, 3), data_format="channels_first")),
        (layers.ZeroPadding2D(((1, 2), (0, 1))), layers.ZeroPadding2D(((1, 2), (0, 1)), data_format="channels_first")),
        (layers.GlobalAveragePooling2D(keepdims=True),
         layers.GlobalAveragePooling2D(keepdims=True, data_format="channels_first")),
    ]
    for last, first in pairs:
        y_last = last(x)
        first(nchw(x))  # builds the weights
        first.set_weights(last.get_weights())
        y_first = first(nchw(x))
        np.testing.assert_allclose(nchw(y_last.value()), y_first.value(), rtol=1e-12, atol=1e-12,
                                   err_msg=type(last).__name__)


def test_conv1d_causal_and_conv3d_match_torch() -> None:
    x1 = RNG.normal(size=(2, 9, 3))
    c1 = layers.Conv1D(5, 3, padding="causal", dilation_rate=2, dtype="float64", bias_initializer="ones")
    y1 = c1(x1)
    ref1 = F.conv1d(F.pad(T(nchw(x1)), (4, 0)), T(oihw(c1.kernel.value())), T(c1.bias.value()), dilation=2)
    np.testing.assert_allclose(y1.value(), nhwc(ref1), **TOL)
    assert y1.shape == (2, 9, 5)

    x3 = RNG.normal(size=(2, 5, 6, 4, 2))
    c3 = layers.Conv3D(3, (2, 3, 2), strides=(1, 2, 2), dtype="float64")
    y3 = c3(x3)
    ref3 = F.conv3d(T(np.moveaxis(x3, -1, 1)), T(oihw(c3.kernel.value())), T(c3.bias.value()), stride=(1, 2, 2))
    np.testing.assert_allclose(y3.value(), np.moveaxis(ref3.numpy(), 1, -1), **TOL)


def test_conv2d_transpose_layer_matches_torch() -> None:
    x = RNG.normal(size=(2, 4, 3, 5))
    layer = layers.Conv2DTranspose(3, (3, 3), strides=2, output_padding=1, dtype="float64",
                                   bias_initializer="ones")
    y = layer(x)
    assert layer.kernel.shape == (3, 3, 3, 5)
    ref = F.conv_transpose2d(T(nchw(x)), T(np.transpose(layer.kernel.value(), (3, 2, 0, 1))), T(layer.bias.value()),
                             stride=2, output_padding=1)
    np.testing.assert_allclose(y.value(), nhwc(ref), **TOL)


def test_global_pooling_and_upsampling_values() -> None:
    x = RNG.normal(size=(2, 4, 6, 3))
    np.testing.assert_allclose(layers.GlobalMaxPooling2D()(x).value(), x.max(axis=(1, 2)))
    np.testing.assert_allclose(layers.GlobalAveragePooling2D(keepdims=True)(x).value(),
                               x.mean(axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(layers.GlobalAveragePooling1D()(x[:, 0]).value(), x[:, 0].mean(axis=1))
    np.testing.assert_allclose(layers.GlobalMaxPooling3D()(x[..., None]).value(), x.max(axis=(1, 2, 3))[:, None])
    np.testing.assert_array_equal(layers.UpSampling2D((2, 3))(x).value(), x.repeat(2, axis=1).repeat(3, axis=2))
    np.testing.assert_array_equal(layers.UpSampling1D(3)(x[:, 0]).value(), x[:, 0].repeat(3, axis=1))
    padded = layers.ZeroPadding2D(((1, 0), (2, 1)))(x).value()
    np.testing.assert_array_equal(padded, np.pad(x, ((0, 0), (1, 0), (2, 1), (0, 0))))
    np.testing.assert_array_equal(layers.ZeroPadding3D(1)(x[..., None]).value(),
                                  np.pad(x[..., None], ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0))))


@pytest.mark.parametrize("order", [1, 2])
def test_layer_gradcheck(order: int) -> None:
    x = RNG.normal(size=(2, 5, 4, 2))
    model = [layers.ZeroPadding2D(1, dtype="float64"), layers.Conv2D(3, 2, activation="tanh", dtype="float64"),
             layers.UpSampling2D(2), layers.AveragePooling2D(3, 2, padding="same")]
    weights = []
    h = x
    for layer in model:
        h = layer(h)
        weights += layer.trainable_variables()
    kernel, bias = (w.value().copy() for w in weights)

    def fn(xv: Variable, k: Variable, b: Variable) -> Variable:
        conv = model[1]
        conv.kernel, conv.bias = k, b
        h = xv
        for layer in model:
            h = layer(h)
        return h

    tg.gradcheck(fn, [x, kernel, bias], order=order)


# -- every layer: shapes, parameter counts, configs -----------------------------------------------
def every_layer() -> list[tuple[Any, tuple]]:
    """(layer, input sample shape) for each image layer, with non-default arguments."""
    return [
        (layers.Conv1D(4, 3, padding="causal", dilation_rate=2, use_bias=False), (9, 2)),
        (layers.Conv2D(4, (3, 2), strides=2, padding="same", groups=2, activation="relu",
                       kernel_initializer="he_normal"), (7, 6, 2)),
        (layers.Conv3D(2, 2, data_format="channels_first"), (3, 4, 5, 3)),
        (layers.Conv1DTranspose(3, 2, strides=2), (5, 2)),
        (layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1, activation="sigmoid"), (4, 3, 2)),
        (layers.Conv3DTranspose(2, (1, 2, 2), strides=(1, 2, 1)), (2, 3, 2, 1)),
        (layers.MaxPooling1D(3, strides=1, padding="same"), (7, 2)),
        (layers.MaxPooling2D(), (7, 6, 2)),
        (layers.MaxPooling3D((1, 2, 2)), (2, 4, 4, 1)),
        (layers.AveragePooling1D(2), (7, 2)),
        (layers.AveragePooling2D(3, strides=2, padding="same"), (7, 6, 2)),
        (layers.AveragePooling3D(2, data_format="channels_first"), (2, 4, 4, 3)),
        (layers.GlobalMaxPooling1D(), (7, 2)),
        (layers.GlobalMaxPooling2D(keepdims=True), (7, 6, 2)),
        (layers.GlobalMaxPooling3D(), (2, 4, 4, 1)),
        (layers.GlobalAveragePooling1D(keepdims=True), (7, 2)),
        (layers.GlobalAveragePooling2D(data_format="channels_first"), (2, 7, 6)),
        (layers.GlobalAveragePooling3D(), (2, 4, 4, 1)),
        (layers.UpSampling1D(3), (4, 2)),
        (layers.UpSampling2D((2, 1)), (3, 4, 2)),
        (layers.UpSampling3D(2), (1, 2, 3, 1)),
        (layers.ZeroPadding1D((1, 2)), (4, 2)),
        (layers.ZeroPadding2D(((1, 0), (2, 3))), (3, 4, 2)),
        (layers.ZeroPadding3D((1, 0, 2)), (1, 2, 3, 1)),
    ]


def test_output_shapes_parameter_counts_and_configs() -> None:
    for layer, sample in every_layer():
        name = type(layer).__name__
        x = RNG.normal(size=(2,) + sample).astype(np.float32)
        predicted = layer.compute_output_shape(sample)
        y = layer(x)
        assert y.shape == (2,) + tuple(predicted) == (2,) + tuple(layer.output_shape), name
        expected_params = 0
        if hasattr(layer, "filters"):
            channels = sample[-1] if layer.data_format == "channels_last" else sample[0]
            per_filter = np.prod(layer.kernel_size) * (
                channels if name.endswith("Transpose") else channels // layer.groups)
            expected_params = per_filter * layer.filters + (layer.filters if layer.use_bias else 0)
        assert layer.count_params() == expected_params, name
        config = layer.get_config()
        clone = layers.deserialize(json.loads(json.dumps(layers.serialize(layer))))
        assert type(clone) is type(layer) and clone.get_config() == config, name
        clone(x)
        clone.set_weights(layer.get_weights())
        np.testing.assert_array_equal(clone(x).value(), y.value(), err_msg=name)


def test_summary_shows_shapes_and_parameter_counts() -> None:
    nn = tg.NeuralNetworks()
    L = nn.layers
    model = tg.Sequential([
        L.Input(shape=(28, 28, 1)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(), L.Dense(10),
    ])
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for shape, params in [("(None, 26, 26, 32)", "320"), ("(None, 13, 13, 32)", "0"),
                          ("(None, 11, 11, 64)", "18,496"), ("(None, 5, 5, 64)", "0"), ("(None, 1600)", "0"),
                          ("(None, 10)", "16,010")]:
        assert any(shape in line and line.rstrip().endswith(params) for line in lines), (shape, text)
    assert "Total params: 34,826" in text


def test_save_load_round_trip_of_models_with_every_layer(tmp_path: Any) -> None:
    nn = tg.NeuralNetworks()
    L = nn.layers
    models = {
        "1d": ([L.Input(shape=(12, 3)), L.ZeroPadding1D((1, 2)), L.Conv1D(4, 3, padding="causal"),
                L.MaxPooling1D(2), L.UpSampling1D(2), L.Conv1DTranspose(2, 3, strides=2), L.AveragePooling1D(3),
                L.GlobalMaxPooling1D(), L.Dense(3)], (12, 3)),
        "2d": ([L.Input(shape=(10, 9, 2)), L.ZeroPadding2D(1), L.Conv2D(4, 3, strides=2, groups=2, activation="relu"),
                L.Conv2DTranspose(3, 3, strides=2, padding="same"), L.MaxPooling2D(3, 2, padding="same"),
                L.UpSampling2D(2), L.AveragePooling2D(2), L.Conv2D(2, 1, data_format="channels_first"),
                L.GlobalAveragePooling2D(), L.Dense(3)], (10, 9, 2)),
        "3d": ([L.Input(shape=(4, 6, 6, 1)), L.Conv3D(2, 2, padding="same"), L.ZeroPadding3D(1),
                L.MaxPooling3D(2), L.UpSampling3D((1, 2, 2)), L.Conv3DTranspose(2, 2),
                L.AveragePooling3D(2), L.GlobalMaxPooling3D(keepdims=True), L.GlobalAveragePooling3D(),
                L.Dense(3)], (4, 6, 6, 1)),
    }
    for name, (stack, sample) in models.items():
        model = tg.Sequential(stack)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x = RNG.normal(size=(8,) + sample).astype(np.float32)
        y = RNG.integers(0, 3, 8)
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)
        before = model.predict(x, verbose=0)
        path = tmp_path / f"{name}.tgm"
        model.save(path)
        loaded = tg.load_model(path)
        assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
        assert [a.get_config() for a in loaded.layers] == [b.get_config() for b in model.layers]
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), before, err_msg=name)
        # training resumes identically
        h1 = model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history["loss"]
        h2 = loaded.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(h1, h2, rtol=1e-6, err_msg=name)


# -- compiled == eager ---------------------------------------------------------------------------
def small_cnn(nn: Any, seed: int) -> list:
    tg.set_seed(seed)
    L = nn.layers
    return [L.Conv2D(4, 3, activation="relu", padding="same"), L.MaxPooling2D(2),
            L.Conv2D(6, 3, strides=2, groups=2, activation="tanh"), L.Conv2DTranspose(3, 2, strides=2),
            L.AveragePooling2D(2, padding="same"), L.Flatten(), L.Dense(5)]


def test_compiled_training_step_equals_eager() -> None:
    nn = tg.NeuralNetworks(dtype="float64")
    g = nn.gradient()
    lossf = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    rng = np.random.default_rng(5)
    batches = [(rng.normal(size=(4, 9, 8, 2)), rng.integers(0, 5, 4)) for _ in range(3)]
    runs = {}
    for mode in ("eager", "compiled"):
        stack = small_cnn(nn, 1)
        h = batches[0][0]
        for layer in stack:
            h = layer(h)
        params = [v for layer in stack for v in layer.trainable_variables()]
        opt = nn.optimizers.Adam(learning_rate=0.01)

        def step(x: Any, y: Any) -> Any:
            with g.GradientTape() as tape:
                h = x
                for layer in stack:
                    h = layer(h, training=True)
                loss = lossf(y, h)
            opt.update(params, tape.gradient(loss, params))
            return loss

        fn = g.Function(step) if mode == "compiled" else step
        losses = [float(fn(x, y)) for x, y in batches]  # the same shapes, other values
        if mode == "compiled":
            assert fn.trace_count == 1
        runs[mode] = (losses, [p.value().copy() for p in params])
    np.testing.assert_allclose(runs["compiled"][0], runs["eager"][0], rtol=1e-10)
    for a, b in zip(runs["compiled"][1], runs["eager"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_compiled_ops_equal_eager_for_gradients_and_second_derivatives() -> None:
    rng = np.random.default_rng(8)

    def f(x: Variable, k: Variable) -> Variable:
        y = tg.conv(x, k, strides=(1, 2), padding="same", dilation_rate=(2, 1))
        y = tg.max_pool(tg.tanh(y), 2, strides=1, padding="same")
        y = tg.conv_transpose(y, k, strides=2)
        return tg.reduce_sum(tg.avg_pool(y, 3, strides=2, padding="same") ** 2)

    def grads(x: Variable, k: Variable) -> Any:
        with tg.GradientTape() as outer:
            with tg.GradientTape() as inner:
                y = f(x, k)
            gx, gk = inner.gradient(y, [x, k])
            s = tg.reduce_sum(gx * gx) + tg.reduce_sum(gk)
        return y, gx, gk, outer.gradient(s, k)

    compiled = tg.Function(grads)
    for _ in range(2):  # a second call with other values runs the compiled graph
        x, k = Variable(rng.normal(size=(2, 7, 6, 3))), Variable(rng.normal(size=(3, 2, 3, 4)))
        for got, expected in zip(compiled(x, k), grads(x, k)):
            np.testing.assert_allclose(got.value(), expected.value(), rtol=1e-10, atol=1e-12)
    assert compiled.trace_count == 1


# -- errors --------------------------------------------------------------------------------------
def test_layer_errors_name_the_layer_and_the_shapes() -> None:
    conv = layers.Conv2D(4, 3, name="c2")
    with pytest.raises(ValueError, match=r"c2: Conv2D expects inputs of rank 4, \(batch, height, width, channels\), "
                                         r"got inputs of shape \(None, 8, 3\)"):
        conv(np.zeros((2, 8, 3), np.float32))
    conv(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"c2: expected inputs of shape \(8, 8, 3\).*got \(8, 8, 2\)"):
        conv(np.zeros((2, 8, 8, 2), np.float32))
    with pytest.raises(ValueError, match=r"p3: MaxPooling3D expects inputs of rank 5"):
        layers.MaxPooling3D(name="p3")(np.zeros((2, 4, 4, 1), np.float32))
    with pytest.raises(ValueError, match=r"g: groups=3 must divide the input channels, got inputs of shape "
                                         r"\(None, 5, 5, 4\) with 4 channels"):
        layers.Conv2D(6, 3, groups=3, name="g")(np.zeros((1, 5, 5, 4), np.float32))
    with pytest.raises(ValueError, match=r"k: the kernel \(extent \(5, 5\)\) does not fit into inputs of shape "
                                         r"\(None, 3, 8, 1\)"):
        layers.Conv2D(2, 5, name="k")(np.zeros((1, 3, 8, 1), np.float32))
    bad = [
        (lambda: layers.Conv2D(4, 0, name="a"), r"'a': kernel_size must be >= 1, got 0"),
        (lambda: layers.Conv2D(4, 3, strides=-1, name="b"), r"'b': strides must be >= 1, got -1"),
        (lambda: layers.Conv2D(4, 3, padding="full", name="c"),
         r"'c': padding must be one of 'valid', 'same', got 'full'"),
        (lambda: layers.Conv2D(4, 3, padding="causal", name="d"), r"'d': padding must be one of 'valid', 'same'"),
        (lambda: layers.Conv2D(5, 3, groups=2, name="e"), r"'e': groups=2 must divide filters=5"),
        (lambda: layers.Conv2D(0, 3, name="f"), r"'f': filters must be a positive int.*, got 0"),
        (lambda: layers.Conv2D(2, (3, 3, 3), name="h"), r"'h': kernel_size must be an int or 2 ints"),
        (lambda: layers.MaxPooling2D(0, name="i"), r"'i': pool_size must be >= 1, got 0"),
        (lambda: layers.Conv2D(2, 3, data_format="NHWC", name="j"), r"'j': data_format must be 'channels_last'"),
        (lambda: layers.UpSampling2D(interpolation="bilinear", name="m"), r"'m': interpolation must be 'nearest'"),
        (lambda: layers.ZeroPadding2D(-1, name="n"), r"'n': padding must be in \[0, 2147483647\], got -1"),
    ]
    for make, message in bad:
        with pytest.raises(ValueError, match=message):
            make()
    with pytest.raises(TypeError, match=r"Conv2D 'o': output_padding is not an argument of Conv2D"):
        layers.Conv2D(2, 3, output_padding=1, name="o")


def test_op_errors_name_the_op_argument_and_values() -> None:
    x, k = np.zeros((2, 8, 8, 4)), np.zeros((3, 3, 4, 6))
    cases = [
        (lambda: tg.conv(x, np.zeros((3, 3, 3, 6))),
         r"conv: x has 4 channels, but the kernel of shape \(3, 3, 3, 6\) expects 3 \* groups=1 = 3"),
        (lambda: tg.conv(x, k, groups=3), r"conv: groups=3 must divide the input channels \(4\) and the filters \(6\)"),
        (lambda: tg.conv(x, k, strides=(1, 0)), r"conv: strides must be >= 1, got \(1, 0\)"),
        (lambda: tg.conv(x, k, padding="causal"), r"conv: padding 'causal' is only for 1-D convolutions"),
        (lambda: tg.conv(x, k, padding="full"), r"conv: padding must be one of 'valid', 'same', 'causal', got 'full'"),
        (lambda: tg.conv(x[0], k), r"conv: a kernel of shape \(3, 3, 4, 6\) has 2 spatial axes, so x must have rank 4"),
        (lambda: tg.conv(x, np.zeros((3, 0, 4, 6))), r"conv: kernel has an empty axis: shape \(3, 0, 4, 6\)"),
        (lambda: tg.conv(x, k, dilation_rate=4), r"conv: the dilated kernel \(extent 9 along spatial axis 0\) "
                                                  r"does not fit into the input of shape \(2, 8, 8, 4\)"),
        (lambda: tg.conv(x, k, data_format="NCHW"), r"conv: data_format must be"),
        (lambda: tg.conv(x, k, groups=0), r"conv: groups must be a positive int, got 0"),
        (lambda: tg.conv_transpose(x, k), r"conv_transpose: x has 4 channels, but the kernel of shape "
                                          r"\(3, 3, 4, 6\) expects 6"),
        (lambda: tg.conv_transpose(x, np.zeros((3, 3, 2, 4)), strides=2, output_padding=2),
         r"conv_transpose: output_padding \(2, 2\) must be smaller than strides \(2, 2\)"),
        (lambda: tg.max_pool(x, 9), r"max_pool: the pool window \(extent 9 along spatial axis 0\) does not fit"),
        (lambda: tg.avg_pool(x[0, 0], 2), r"avg_pool: x must have rank 3, 4 or 5"),
        (lambda: tg.max_pool(x, (2, 2), strides=-2), r"max_pool: strides must be >= 1, got -2"),
        (lambda: tg.max_pool(x, 2, padding="causal"), r"max_pool: padding must be one of 'valid', 'same'"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match=r"conv: strides must be an int or a tuple of ints, got 1.5"):
        tg.conv(x, k, strides=1.5)


def test_builder_exposes_ops_and_layers() -> None:
    nn = tg.NeuralNetworks()
    g = nn.gradient()
    for op in ("conv", "conv_transpose", "max_pool", "avg_pool"):
        assert getattr(g, op) is getattr(tg, op)
    for layer, _ in every_layer():
        name = type(layer).__name__
        assert getattr(nn.layers, name)(**_first_args(name)).dtype == np.float32
        assert getattr(tg.layers, name) is type(layer)


def _first_args(name: str) -> dict:
    return {"filters": 2, "kernel_size": 3} if name.startswith("Conv") else {}


def test_default_names_are_keras_names() -> None:
    layers.reset_names()
    made = [layers.Conv2D(2, 3), layers.Conv2D(2, 3), layers.Conv2DTranspose(2, 3), layers.MaxPooling2D(),
            layers.GlobalAveragePooling1D(), layers.UpSampling3D(), layers.ZeroPadding2D()]
    assert [m.name for m in made] == ["conv2d", "conv2d_1", "conv2d_transpose", "max_pooling2d",
                                      "global_average_pooling1d", "up_sampling3d", "zero_padding2d"]


def test_signatures_follow_api_section_8() -> None:
    import inspect

    def defaults(fn: Any) -> dict:
        return {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}

    assert defaults(tg.conv) == {"strides": 1, "padding": "valid", "dilation_rate": 1, "groups": 1,
                                 "data_format": "channels_last"}
    assert defaults(tg.conv_transpose) == {"strides": 1, "padding": "valid", "output_padding": None,
                                           "dilation_rate": 1, "data_format": "channels_last"}
    for op in (tg.max_pool, tg.avg_pool):
        assert defaults(op) == {"strides": None, "padding": "valid", "data_format": "channels_last"}
    conv_defaults = {"strides": 1, "padding": "valid", "data_format": None, "dilation_rate": 1, "groups": 1,
                     "activation": None, "use_bias": True, "kernel_initializer": "glorot_uniform",
                     "bias_initializer": "zeros"}
    for cls in (layers.Conv1D, layers.Conv2D, layers.Conv3D):
        assert {k: v for k, v in defaults(cls).items() if k in conv_defaults} == conv_defaults
        assert list(inspect.signature(cls).parameters)[:2] == ["filters", "kernel_size"]
    assert list(inspect.signature(layers.Conv2DTranspose).parameters)[:5] == [
        "filters", "kernel_size", "strides", "padding", "output_padding"]
    pool_defaults = {"pool_size": 2, "strides": None, "padding": "valid", "data_format": None}
    for cls in (layers.MaxPooling2D, layers.AveragePooling3D):  # (and the keywords every layer takes)
        assert {k: v for k, v in defaults(cls).items() if k in pool_defaults} == pool_defaults
        assert set(defaults(cls)) - set(pool_defaults) == {"name", "input_shape", "dtype", "trainable"}
    assert defaults(layers.GlobalMaxPooling2D)["keepdims"] is False
    assert defaults(layers.UpSampling2D)["size"] == 2 and defaults(layers.ZeroPadding2D)["padding"] == 1
