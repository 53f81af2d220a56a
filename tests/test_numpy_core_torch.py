"""NumPy's differentiable core (elementwise math, scans and moments, products, array
manipulation, norm) against PyTorch in float64: values, gradients, torch.func's jvp, vmap and
jacfwd, Hessian-vector products, and gradcheck to order 2 (see torch_oracle.py).

Inputs are sampled inside each op's domain and away from its kinks and ties (ties and
zeros have their own tests at the end). Shapes cover (), (3,), (2, 3), (1, 3), axes,
keepdims and broadcasting.
"""

from __future__ import annotations

import numpy as np
import pytest
from torch_oracle import CHECKS, Case, check_gradcheck, torch

import tapegrad as tg

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

F = torch.nn.functional


def uniform(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape)


real, unit, above_one, positive = uniform(-2.0, 2.0), uniform(-0.9, 0.9), uniform(1.2, 3.0), uniform(0.5, 2.0)


def distinct(rng, shape):
    """Values pairwise ~0.3 apart: no ties for sort, max or norms."""
    n = int(np.prod(shape, dtype=np.int64))
    return (rng.permutation(np.linspace(-2.0, 2.0, max(n, 2)))[:n] + rng.uniform(-0.02, 0.02, n)).reshape(shape)


def of(*parts):
    """Inputs from (sampler, shape) pairs."""
    return lambda rng: [sampler(rng, shape) for sampler, shape in parts]


CASES: list[Case] = []


def case(id, fn, torch_fn, *parts, tol=None):
    CASES.append(Case(id, fn, torch_fn, of(*parts), tol))


SHAPES = [(), (3,), (2, 3), (1, 3)]
PAIRS = [((2, 3), (3,)), ((1, 3), (2, 1)), ((), (2, 3))]

# -- elementwise --------------------------------------------------------------------------------
for name, torch_fn, sampler in [
    ("arcsin", torch.asin, unit), ("arccos", torch.acos, unit), ("arctan", torch.atan, real),
    ("sinh", torch.sinh, real), ("cosh", torch.cosh, real), ("arcsinh", torch.asinh, real),
    ("arccosh", torch.acosh, above_one), ("arctanh", torch.atanh, unit), ("log2", torch.log2, positive),
    ("log10", torch.log10, positive), ("exp2", torch.exp2, real), ("floor", torch.floor, real),
    ("ceil", torch.ceil, real),
]:
    for shape in (SHAPES[len(CASES) % 4], SHAPES[(len(CASES) + 1) % 4]):  # two of the shapes, in turn
        case(f"{name}{shape}", getattr(tg, name), torch_fn, (sampler, shape))
case("round(2, 3)", lambda x: tg.round(x, 1), lambda x: torch.round(x, decimals=1), (real, (2, 3)))
case("round_times_x(3,)", lambda x: tg.round(x * 4.0) * x, lambda x: torch.round(x * 4.0) * x, (real, (3,)))
for k, (a, b) in enumerate(PAIRS):
    case(f"arctan2{a}{b}", tg.arctan2, torch.atan2, (real, a), (real, b))
    case(f"logaddexp{PAIRS[k - 1][0]}{PAIRS[k - 1][1]}", tg.logaddexp, torch.logaddexp, (real, PAIRS[k - 1][0]),
         (real, PAIRS[k - 1][1]))
    if k < 2:
        case(f"mod{a}{b}", tg.mod, torch.remainder, (uniform(-5.0, 5.0), a), (positive, b))
case("mod_operator(1, 3)", lambda x, y: x % y - 3.0 % y, lambda x, y: x % y - (3.0 - y * torch.floor(3.0 / y)),
     (uniform(-5.0, 5.0), (1, 3)), (uniform(-2.0, -0.5), (3,)))

# -- scans and moments ----------------------------------------------------------------------------
for shape, axis in [((3,), 0), ((2, 3), 0), ((2, 3), 1), ((1, 3), -1)]:
    case(f"cumsum{shape}axis{axis}", lambda x, a=axis: tg.cumsum(x, axis=a), lambda x, a=axis: torch.cumsum(x, a),
         (real, shape))
    case(f"cumprod{shape}axis{axis}", lambda x, a=axis: tg.cumprod(x, axis=a),
         lambda x, a=axis: torch.cumprod(x, a), (real, shape))


def with_zeros(rng, shape):
    """Values with zeros in them (one and two zeros per row): cumprod's derivatives stay exact."""
    x = rng.uniform(-2.0, 2.0, shape)
    x[..., 1] = 0.0
    x[-1, 3] = 0.0
    return x


case("cumprod_with_zeros(2, 5)", lambda x: tg.cumprod(x, axis=1), lambda x: torch.cumprod(x, 1),
     (with_zeros, (2, 5)))
case("cumsum_flat(2, 3)", tg.cumsum, lambda x: torch.cumsum(x.reshape(-1), 0), (real, (2, 3)))
case("cumprod_flat(2, 3)", tg.cumprod, lambda x: torch.cumprod(x.reshape(-1), 0), (real, (2, 3)))
for shape, axis, ddof, keepdims in [((3,), None, 0, False), ((2, 3), 1, 1, False), ((2, 3), 0, 0, True),
                                    ((1, 3), (0, 1), 1, True), ((2, 3), None, 1, False)]:
    case(f"var{shape}axis{axis}ddof{ddof}keepdims{keepdims}",
         lambda x, a=axis, d=ddof, k=keepdims: tg.var(x, axis=a, ddof=d, keepdims=k),
         lambda x, a=axis, d=ddof, k=keepdims: torch.var(x, dim=a, correction=d, keepdim=k), (real, shape))
    case(f"std{shape}axis{axis}ddof{ddof}keepdims{keepdims}",
         lambda x, a=axis, d=ddof, k=keepdims: tg.std(x, axis=a, ddof=d, keepdims=k),
         lambda x, a=axis, d=ddof, k=keepdims: torch.std(x, dim=a, correction=d, keepdim=k), (real, shape))

# -- products -------------------------------------------------------------------------------------
for subscripts, shapes in [("ij,jk->ik", [(2, 3), (3, 2)]), ("ij,jk", [(2, 3), (3, 2)]), ("ii->i", [(3, 3)]),
                           ("ii", [(3, 3)]), ("ij->j", [(2, 3)]), ("i,i->", [(3,), (3,)]),
                           ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]), ("...j,...j->...", [(1, 3), (2, 3)]),
                           ("ij,j,jk->ik", [(2, 3), (3,), (3, 2)]), ("ii,ij->j", [(3, 3), (3, 2)])]:
    case(f"einsum[{subscripts}]", lambda *xs, s=subscripts: tg.einsum(s, *xs),
         lambda *xs, s=subscripts: torch.einsum(s, *xs), *[(real, shape) for shape in shapes])
case("tensordot(2, 3, 2)x(3, 2)", lambda a, b: tg.tensordot(a, b, 2),
     lambda a, b: torch.tensordot(a, b, 2), (real, (2, 3, 2)), (real, (3, 2)))
case("tensordot_axes", lambda a, b: tg.tensordot(a, b, ([0], [1])),
     lambda a, b: torch.tensordot(a, b, ([0], [1])), (real, (2, 3)), (real, (3, 2)))
case("dot(3,)x(3,)", tg.dot, torch.dot, (real, (3,)), (real, (3,)))
case("dot(2, 3)x(3,)", tg.dot, torch.matmul, (real, (2, 3)), (real, (3,)))
case("dot(2, 3)x(3, 2)", tg.dot, torch.matmul, (real, (2, 3)), (real, (3, 2)))
case("dot(2, 3)x(2, 3, 2)", tg.dot, lambda a, b: torch.tensordot(a, b, ([1], [1])), (real, (2, 3)),
     (real, (2, 3, 2)))
case("dot()x(2, 3)", tg.dot, torch.mul, (real, ()), (real, (2, 3)))
case("inner(2, 3)x(3,)", tg.inner, torch.inner, (real, (2, 3)), (real, (3,)))
case("inner(2, 3)x(1, 3)", tg.inner, torch.inner, (real, (2, 3)), (real, (1, 3)))
case("outer(3,)x(2, 2)", tg.outer, lambda a, b: torch.outer(a.reshape(-1), b.reshape(-1)), (real, (3,)),
     (real, (2, 2)))
case("kron(2, 2)x(1, 3)", tg.kron, torch.kron, (real, (2, 2)), (real, (1, 3)))
case("kron(3,)x(2, 2)", tg.kron, torch.kron, (real, (3,)), (real, (2, 2)))
case("cross(2, 3)x(3,)", tg.cross, lambda a, b: torch.linalg.cross(a, b.expand(a.shape)), (real, (2, 3)),
     (real, (3,)))
case("cross_axis0(3, 2)", lambda a, b: tg.cross(a, b, axis=0), lambda a, b: torch.linalg.cross(a, b, dim=0),
     (real, (3, 2)), (real, (3, 2)))

# -- manipulation ------------------------------------------------------------------------------------
for shape, axis in [((4,), 0), ((2, 3), 1), ((3, 2), 0)]:
    case(f"sort{shape}axis{axis}", lambda x, a=axis: tg.sort(x, axis=a), lambda x, a=axis: torch.sort(x, a).values,
         (distinct, shape))
case("sort_flat(2, 3)", lambda x: tg.sort(x, axis=None), lambda x: torch.sort(x.reshape(-1)).values,
     (distinct, (2, 3)))
_INDEX = np.array([[2, 0], [1, 1]])
case("take_along_axis(2, 3)", lambda x: tg.take_along_axis(x, _INDEX, axis=1),
     lambda x: torch.take_along_dim(x, torch.from_numpy(_INDEX), 1), (real, (2, 3)))
case("take_along_axis_broadcast(1, 3)", lambda x: tg.take_along_axis(x, _INDEX, axis=1),
     lambda x: torch.take_along_dim(x.expand(2, 3), torch.from_numpy(_INDEX), 1), (real, (1, 3)))
case("flip(2, 3)", lambda x: tg.flip(x, 1), lambda x: torch.flip(x, (1,)), (real, (2, 3)))
case("flip_all(2, 3)", tg.flip, lambda x: torch.flip(x, (0, 1)), (real, (2, 3)))
case("roll(2, 3)", lambda x: tg.roll(x, -1, axis=1), lambda x: torch.roll(x, -1, 1), (real, (2, 3)))
case("roll_flat(2, 3)", lambda x: tg.roll(x, 4), lambda x: torch.roll(x, 4), (real, (2, 3)))
for k in (-1, 0, 1):
    case(f"tril{k}", lambda x, k=k: tg.tril(x, k), lambda x, k=k: torch.tril(x, k), (real, (3, 4)))
    case(f"triu{k}", lambda x, k=k: tg.triu(x, k), lambda x, k=k: torch.triu(x, k), (real, (4, 3)))
    case(f"trace{k}", lambda x, k=k: tg.trace(x, k), lambda x, k=k: torch.diagonal(x, k).sum(), (real, (3, 4)))
    case(f"diag_vector{k}", lambda x, k=k: tg.diag(x, k), lambda x, k=k: torch.diag(x, k), (real, (3,)))
    case(f"diag_matrix{k}", lambda x, k=k: tg.diag(x, k), lambda x, k=k: torch.diag(x, k), (real, (3, 4)))
case("diagonal(2, 3, 3)", lambda x: tg.diagonal(x, 1, 1, 2), lambda x: torch.diagonal(x, 1, 1, 2),
     (real, (2, 3, 3)))
case("pad_constant(2, 3)", lambda x: tg.pad(x, ((1, 0), (2, 1)), constant_values=0.5),
     lambda x: F.pad(x, (2, 1, 1, 0), value=0.5), (real, (2, 3)))
case("pad_reflect(2, 4)", lambda x: tg.pad(x, ((0, 0), (2, 1)), mode="reflect"),
     lambda x: F.pad(x, (2, 1), mode="reflect"), (real, (2, 4)))
case("pad_edge(2, 3)", lambda x: tg.pad(x, ((0, 0), (1, 2)), mode="edge"),
     lambda x: F.pad(x, (1, 2), mode="replicate"), (real, (2, 3)))
case("pad_wrap(2, 3)", lambda x: tg.pad(x, ((0, 0), (2, 1)), mode="wrap"),
     lambda x: F.pad(x, (2, 1), mode="circular"), (real, (2, 3)))
case("tile(2, 3)", lambda x: tg.tile(x, (2, 1, 2)), lambda x: torch.tile(x, (2, 1, 2)), (real, (2, 3)))
case("tile(3,)", lambda x: tg.tile(x, 2), lambda x: torch.tile(x, (2,)), (real, (3,)))
case("diff(3, 4)", lambda x: tg.diff(x, 2), lambda x: torch.diff(x, 2), (real, (3, 4)))
_EDGE = np.array([[0.5, -1.0, 2.0]])
case("diff_prepend(3, 3)", lambda x: tg.diff(x, axis=0, prepend=_EDGE),
     lambda x: torch.diff(x, dim=0, prepend=torch.from_numpy(_EDGE)), (real, (3, 3)))
case("moveaxis(2, 3, 1)", lambda x: tg.moveaxis(x, 0, -1), lambda x: torch.movedim(x, 0, -1), (real, (2, 3, 1)))
case("swapaxes(2, 3, 1)", lambda x: tg.swapaxes(x, 0, 1), lambda x: torch.swapaxes(x, 0, 1), (real, (2, 3, 1)))

# -- norm -----------------------------------------------------------------------------------------------
for order in (None, 2, 1, np.inf, -np.inf, 3, 0.5):
    case(f"norm_vector_ord{order}", lambda x, o=order: tg.norm(x, o, axis=1),
         lambda x, o=order: torch.linalg.norm(x, 2 if o is None else o, dim=1), (distinct, (2, 3)))
case("norm_keepdims(1, 3)", lambda x: tg.norm(x, axis=-1, keepdims=True),
     lambda x: torch.linalg.norm(x, dim=-1, keepdim=True), (real, (1, 3)))
case("norm_all(2, 3)", tg.norm, lambda x: torch.linalg.norm(x.reshape(-1)), (real, (2, 3)))
for order in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
    case(f"norm_matrix_ord{order}", lambda x, o=order: tg.norm(x, o),
         lambda x, o=order: torch.linalg.norm(x, o), (distinct, (3, 2)))


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_against_torch(case, check):
    CHECKS[check](case)


def _first_of_each_op(cases):
    seen, first = set(), []
    for c in cases:
        op = c.id.split("(")[0].split("[")[0].rstrip("0123456789-").removesuffix("axis")
        if op not in seen:
            seen.add(op)
            first.append(c)
    return first


@pytest.mark.parametrize("case", _first_of_each_op(CASES), ids=[c.id for c in _first_of_each_op(CASES)])
def test_gradcheck_to_second_order(case):
    check_gradcheck(case)
