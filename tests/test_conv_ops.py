"""conv, conv_transpose, max_pool and avg_pool against PyTorch (float64).

Over a grid of spatial rank x strides x padding x dilation x groups x data format:
values, gradients (input and kernel) and Hessian-vector products of
``sum(op(x, w)**2 * c)`` against torch.autograd's double backward. Layouts are mapped
(torch is NC... / OI...); Keras' ``same`` and ``causal`` paddings are given to torch as
explicit pads computed here from Keras' definition.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Any, Callable

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import Variable

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = {"rtol": 1e-10, "atol": 1e-11}


def T(a: np.ndarray, grad: bool = False) -> Any:
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=grad)


def rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def keras_pads(mode: str, sizes: tuple, extents: tuple, strides: tuple) -> list[tuple[int, int]]:
    """Keras' padding: same -> ceil(n / s) outputs, the odd cell at the end; causal -> all at the start."""
    pads = []
    for n, k, s in zip(sizes, extents, strides):
        if mode == "valid":
            pads.append((0, 0))
        elif mode == "causal":
            pads.append((k - 1, 0))
        else:
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
    return pads


def torch_pad(t: Any, pads: list[tuple[int, int]], value: float = 0.0) -> Any:
    flat = [p for pair in reversed(pads) for p in pair]  # torch lists the last axis first
    return F.pad(t, flat, value=value)


def to_torch_layout(x: np.ndarray, data_format: str) -> np.ndarray:
    return np.moveaxis(x, -1, 1) if data_format == "channels_last" else x


def from_torch_layout(y: np.ndarray, data_format: str) -> np.ndarray:
    return np.moveaxis(y, 1, -1) if data_format == "channels_last" else y


TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TORCH_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


# -- the grid --------------------------------------------------------------------------------------
def conv_grid() -> list[tuple]:
    cases = []
    for rank, strides, padding, dilation, groups, fmt in itertools.product(
            (1, 2, 3), (1, 2), ("valid", "same", "causal"), (1, 2), (1, 2), ("channels_last", "channels_first")):
        if padding == "causal" and rank != 1:
            continue
        if rank == 3 and (groups == 2 and fmt == "channels_first" or dilation == 2 and strides == 2):
            continue  # keep the 3-D part of the grid small
        cases.append((rank, strides, padding, dilation, groups, fmt))
    # per-axis strides and dilations
    cases.append((2, (1, 2), "same", (2, 1), 1, "channels_last"))
    cases.append((3, (2, 1, 1), "valid", (1, 1, 2), 2, "channels_last"))
    return cases


def conv_id(case: tuple) -> str:
    rank, s, p, d, g, fmt = case
    return f"{rank}d-s{s}-{p}-d{d}-g{g}-{fmt[9:]}"


def conv_inputs(case: tuple) -> tuple[np.ndarray, np.ndarray]:
    rank, _, _, _, groups, fmt = case
    rng = rng_for(conv_id(case))
    sizes = {1: (9,), 2: (7, 6), 3: (5, 6, 5)}[rank]
    window = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}[rank]
    channels, filters = 4, 6
    x = rng.standard_normal((2,) + sizes + (channels,))
    if fmt == "channels_first":
        x = np.moveaxis(x, -1, 1).copy()
    w = rng.standard_normal(window + (channels // groups, filters)) * 0.5
    return x, w


def tg_conv(case: tuple) -> Callable:
    _, s, p, d, g, fmt = case
    return lambda x, w: tg.conv(x, w, strides=s, padding=p, dilation_rate=d, groups=g, data_format=fmt)


def torch_conv(case: tuple, x_shape: tuple, w_shape: tuple) -> Callable:
    rank, s, p, d, g, fmt = case
    strides = s if isinstance(s, tuple) else (s,) * rank
    dilation = d if isinstance(d, tuple) else (d,) * rank
    sizes = x_shape[1:-1] if fmt == "channels_last" else x_shape[2:]
    extents = tuple((k - 1) * di + 1 for k, di in zip(w_shape[:rank], dilation))
    pads = keras_pads(p, sizes, extents, strides)

    def run(x: Any, w: Any) -> Any:
        xt = x.movedim(-1, 1) if fmt == "channels_last" else x
        wt = w.movedim(-1, 0).movedim(-1, 1)  # (*window, c, f) -> (f, c, *window)
        y = TORCH_CONV[rank](torch_pad(xt, pads), wt, stride=strides, dilation=dilation, groups=g)
        return y.movedim(1, -1) if fmt == "channels_last" else y

    return run


def check_against_torch(fn: Callable, torch_fn: Callable, xs: list[np.ndarray], name: str,
                        hvp: bool = True) -> None:
    """Values, gradients and Hessian-vector products of sum(fn(xs)**2 * c)."""
    rng = rng_for(name + "/weights")
    ts = [T(x, grad=True) for x in xs]
    ty = torch_fn(*ts)
    c = rng.uniform(0.5, 1.5, tuple(ty.shape))
    vs = [rng.standard_normal(x.shape) for x in xs]
    tloss = (ty * ty * T(c)).sum()
    tgrads = torch.autograd.grad(tloss, ts, create_graph=True)
    ts_dot = sum((g * T(v)).sum() for g, v in zip(tgrads, vs))
    thvps = torch.autograd.grad(ts_dot, ts, allow_unused=True)

    variables = [Variable(x) for x in xs]
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            y = fn(*variables)
            loss = tg.reduce_sum(y * y * c)
        grads = inner.gradient(loss, variables, unconnected_gradients="zero")
        dot = tg.reduce_sum(grads[0] * vs[0])
        for g, v in zip(grads[1:], vs[1:]):
            dot = dot + tg.reduce_sum(g * v)
    hvps = outer.gradient(dot, variables, unconnected_gradients="zero")

    assert y.shape == tuple(ty.shape) and y.dtype == np.float64
    np.testing.assert_allclose(y.value(), ty.detach().numpy(), **TOL)
    for g, e in zip(grads, tgrads):
        np.testing.assert_allclose(g.value(), e.detach().numpy(), **TOL)
    if hvp:
        for h, e, x in zip(hvps, thvps, xs):
            expected = np.zeros_like(x) if e is None else e.numpy()
            np.testing.assert_allclose(h.value(), expected, **TOL)


@pytest.mark.parametrize("case", conv_grid(), ids=conv_id)
def test_conv_matches_torch(case: tuple) -> None:
    x, w = conv_inputs(case)
    check_against_torch(tg_conv(case), torch_conv(case, x.shape, w.shape), [x, w], conv_id(case))


# -- transposed convolution ----------------------------------------------------------------------
def keras_transpose_size(n: int, k: int, s: int, padding: str, output_padding: int | None) -> int:
    """Keras 3's output length of a transposed convolution (k: the dilated kernel extent)."""
    if padding == "valid":
        extra = max(k, s) - k if output_padding is None else output_padding
        return (n - 1) * s + k + extra
    return n * s if output_padding is None else (n - 1) * s + k % 2 + output_padding


def keras_transpose_crop(k: int, s: int, padding: str, output_padding: int | None) -> int:
    """How many cells Keras 3 drops at the start of the full transposed convolution
    (``(n - 1) * s + k`` cells): ``k - 1`` minus the left padding of its JAX backend."""
    if padding == "valid":
        return 0
    total = s + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
    return k - 1 - min(total // 2 + total % 2, k - 1)


TRANSPOSE_GRID = [
    # rank, strides, padding, output_padding, dilation, data_format
    (1, 1, "valid", None, 1, "channels_last"),
    (1, 3, "valid", None, 1, "channels_first"),
    (1, 2, "same", None, 2, "channels_last"),
    (2, 2, "valid", None, 1, "channels_last"),
    (2, 2, "same", None, 1, "channels_last"),
    (2, 2, "same", 1, 1, "channels_first"),
    (2, (2, 3), "valid", (1, 0), 1, "channels_last"),
    (2, 1, "same", None, 2, "channels_last"),
    (2, 3, "same", 0, 1, "channels_last"),
    (3, 2, "same", None, 1, "channels_last"),
    (3, (1, 2, 1), "valid", None, 1, "channels_first"),
]


def transpose_id(case: tuple) -> str:
    return "{}d-s{}-{}-op{}-d{}-{}".format(*case[:5], case[5][9:])


@pytest.mark.parametrize("case", TRANSPOSE_GRID, ids=transpose_id)
def test_conv_transpose_matches_torch(case: tuple) -> None:
    """torch computes the full transposed convolution (no padding: every cell a window
    touches), which is cropped at the start as Keras 3 does and cut (or zero-extended)
    to Keras' output size."""
    rank, s, padding, op, d, fmt = case
    rng = rng_for(transpose_id(case))
    sizes = {1: (5,), 2: (4, 3), 3: (3, 2, 3)}[rank]
    window = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}[rank]
    strides = s if isinstance(s, tuple) else (s,) * rank
    ops = None if op is None else (op if isinstance(op, tuple) else (op,) * rank)
    dilation = (d,) * rank
    in_ch, filters = 3, 4
    x = rng.standard_normal((2,) + sizes + (in_ch,))
    if fmt == "channels_first":
        x = np.moveaxis(x, -1, 1).copy()
    k = rng.standard_normal(window + (filters, in_ch)) * 0.5
    extents = tuple((w - 1) * d + 1 for w in window)
    out = tuple(keras_transpose_size(n, e, st, padding, None if ops is None else ops[i])
                for i, (n, e, st) in enumerate(zip(sizes, extents, strides)))
    lefts = [keras_transpose_crop(e, st, padding, None if ops is None else ops[i])
             for i, (e, st) in enumerate(zip(extents, strides))]

    def torch_fn(xt: Any, kt: Any) -> Any:
        xc = xt.movedim(-1, 1) if fmt == "channels_last" else xt
        wt = kt.movedim(-1, 0).movedim(-1, 1)  # (*window, filters, in) -> (in, filters, *window)
        full = TORCH_CONV_T[rank](xc, wt, stride=strides, dilation=dilation)
        index = [slice(None), slice(None)]
        grow = []
        for axis, (lo, n) in enumerate(zip(lefts, out)):
            have = full.shape[2 + axis] - lo
            index.append(slice(lo, lo + min(n, have)))
            grow.append((0, max(n - have, 0)))
        y = torch_pad(full[tuple(index)], grow)
        return y.movedim(1, -1) if fmt == "channels_last" else y

    def fn(xv: Any, kv: Any) -> Any:
        return tg.conv_transpose(xv, kv, strides=s, padding=padding, output_padding=op, dilation_rate=d,
                                 data_format=fmt)

    y = fn(x, k)
    spatial = y.shape[1:-1] if fmt == "channels_last" else y.shape[2:]
    assert spatial == out
    check_against_torch(fn, torch_fn, [x, k], transpose_id(case))


def test_conv_transpose_valid_matches_torch_output_padding() -> None:
    """Valid padding with an output_padding below the stride is torch's own conv_transpose."""
    rng = rng_for("transpose-direct")
    x, k = rng.standard_normal((2, 4, 5, 3)), rng.standard_normal((3, 3, 2, 3))
    y = tg.conv_transpose(x, k, strides=(2, 3), output_padding=(1, 2))
    ref = F.conv_transpose2d(T(np.moveaxis(x, -1, 1)), T(np.transpose(k, (3, 2, 0, 1))), stride=(2, 3),
                             output_padding=(1, 2))
    np.testing.assert_allclose(y.value(), np.moveaxis(ref.numpy(), 1, -1), **TOL)


# -- pooling --------------------------------------------------------------------------------------
def pool_grid() -> list[tuple]:
    cases = []
    for kind, rank, (pool, strides), padding, fmt in itertools.product(
            ("max", "avg"), (1, 2, 3), ((2, None), (3, 2), (2, 1)), ("valid", "same"),
            ("channels_last", "channels_first")):
        if rank == 3 and fmt == "channels_first" and padding == "same":
            continue
        cases.append((kind, rank, pool, strides, padding, fmt))
    cases.append(("max", 2, (3, 2), (1, 2), "same", "channels_last"))
    cases.append(("avg", 2, (2, 3), (2, 1), "same", "channels_last"))
    return cases


def pool_id(case: tuple) -> str:
    return "{}-{}d-p{}-s{}-{}-{}".format(*case[:5], case[5][9:])


def torch_pool(kind: str, rank: int, pool: Any, strides: Any, padding: str, fmt: str, sizes: tuple) -> Callable:
    window = pool if isinstance(pool, tuple) else (pool,) * rank
    steps = window if strides is None else (strides if isinstance(strides, tuple) else (strides,) * rank)
    pads = keras_pads(padding, sizes, window, steps)

    def run(x: Any) -> Any:
        xt = x.movedim(-1, 1) if fmt == "channels_last" else x
        if kind == "max":
            y = TORCH_MAX[rank](torch_pad(xt, pads, -np.inf), window, steps)
        else:
            # the mean over the cells that are not padding: window sums / window counts
            ones = torch.ones((1, 1) + tuple(xt.shape[2:]), dtype=torch.float64)
            weight = torch.ones((1, 1) + window, dtype=torch.float64)
            conv = TORCH_CONV[rank]
            sums = conv(torch_pad(xt, pads).flatten(0, 1)[:, None], weight, stride=steps)
            counts = conv(torch_pad(ones, pads), weight, stride=steps)
            y = (sums / counts).reshape(xt.shape[:2] + sums.shape[2:])
        return y.movedim(1, -1) if fmt == "channels_last" else y

    return run


@pytest.mark.parametrize("case", pool_grid(), ids=pool_id)
def test_pool_matches_torch(case: tuple) -> None:
    kind, rank, pool, strides, padding, fmt = case
    sizes = {1: (9,), 2: (7, 6), 3: (5, 4, 5)}[rank]
    rng = rng_for(pool_id(case))
    n = 2 * int(np.prod(sizes)) * 3
    # distinct values: torch's max_pool picks one of tied maxima
    x = (rng.permutation(n) / n + rng.uniform(0, 1e-3, n)).reshape((2,) + sizes + (3,))
    if fmt == "channels_first":
        x = np.moveaxis(x, -1, 1).copy()
    op = tg.max_pool if kind == "max" else tg.avg_pool

    def fn(xv: Any) -> Any:
        return op(xv, pool, strides=strides, padding=padding, data_format=fmt)

    check_against_torch(fn, torch_pool(kind, rank, pool, strides, padding, fmt, sizes), [x], pool_id(case))


@pytest.mark.parametrize("pool,strides", [(2, None), (3, 1)])
def test_max_pool_ties_share_the_gradient_like_reduce_max(pool: int, strides: Any) -> None:
    """Each window gives its cotangent in equal parts to its tied maxima (reduce_max's rule)."""
    x = np.array([[[3.0], [3.0], [0.0], [1.0], [2.0], [2.0], [2.0]]])  # (1, 7, 1)
    xv = Variable(x)
    with tg.GradientTape() as tape:
        y = tg.max_pool(xv, pool, strides=strides)
        loss = tg.reduce_sum(y * np.arange(1.0, y.shape[1] + 1)[None, :, None])
    got = tape.gradient(loss, xv).value()
    step = pool if strides is None else strides
    expected = np.zeros_like(x)
    for i in range(y.shape[1]):
        xw = Variable(x[:, i * step:i * step + pool])
        with tg.GradientTape() as tape:
            m = tg.reduce_max(xw)
        expected[:, i * step:i * step + pool] += (i + 1) * tape.gradient(m, xw).value()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    assert not np.array_equal(got, np.round(got))  # integer weights: only a split makes fractions


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("fn,kernel_shape", [
    (lambda x, w: tg.conv(x, w, strides=2, padding="same", dilation_rate=1), (3, 4, 2)),
    (lambda x, w: tg.conv(x, w, padding="causal", dilation_rate=2), (3, 4, 2)),
    (lambda x, w: tg.tanh(tg.conv(x, w, padding="same", groups=2)), (3, 2, 4)),
], ids=["strided-same", "causal-dilated", "grouped-tanh"])
def test_conv_gradcheck(fn: Callable, kernel_shape: tuple, order: int) -> None:
    rng = rng_for("gradcheck")
    tg.gradcheck(fn, [rng.standard_normal((2, 6, 4)), rng.standard_normal(kernel_shape)], order=order)


@pytest.mark.parametrize("order", [1, 2])
def test_pool_and_transpose_gradcheck(order: int) -> None:
    rng = rng_for("gradcheck-pool")
    x = rng.permutation(30).reshape(1, 5, 3, 2) / 7.0
    tg.gradcheck(lambda v: tg.max_pool(v * v, 2, strides=1, padding="same"), [x], order=order)
    tg.gradcheck(lambda v: tg.avg_pool(tg.sin(v), 2, padding="same"), [x], order=order)
    k = rng.standard_normal((2, 2, 3, 2))
    tg.gradcheck(lambda v, w: tg.conv_transpose(tg.sin(v), w, strides=2, padding="same"), [x, k], order=order)
