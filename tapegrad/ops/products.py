"""Products: einsum (a primitive), and tensordot, dot, inner, outer, kron, cross written with
matmul, reshape, transpose and elementwise primitives (so they run on BLAS where NumPy does).

``einsum`` takes NumPy's subscripts (implicit or explicit output, ``...``, repeated indices
for diagonals and traces, size-1 broadcasting). The public op rewrites them once into an
explicit form without ``...`` (``"ab,bc->ac"``), which the primitive and its rules use:

* VJP for operand k: the einsum of the cotangent with the other operands, giving operand
  k's subscripts. An index repeated in operand k (a diagonal) gets a fresh index and an
  identity matrix joining the two; an index that only operand k has (summed within it) is
  broadcast back; an axis of length 1 that was broadcast is summed back.
* JVP: einsum is linear in each operand, so the tangent is the sum of the einsums with one
  operand replaced by its tangent.
* Batching: the batch axis becomes one more index, shared by the batched operands and the output.
"""

from __future__ import annotations

import string
from collections import Counter
from typing import Any

import numpy as np

from ..autodiff.broadcast import broadcast_to_p, sum_to_p
from ..autodiff.primitive import Primitive
from ..autodiff.variable import Variable
from ..errors import OpTypeError, OpValueError
from ._axis import axis_index
from ._compose import array_operand, dtype_of, result, shape_of
from .elementwise import mul_p
from .indexing import getitem_p
from .linalg import matmul_p
from .shape import concat_p, expand_dims_p, reshape_p, transpose_p

ArrayLike = Any


# -- einsum ---------------------------------------------------------------------------------
def _split(subscripts: str) -> tuple[list[str], str]:
    inputs, output = subscripts.split("->")
    return inputs.split(","), output


def _fresh(used: str, count: int) -> list[str]:
    letters = [c for c in string.ascii_letters if c not in used]
    if len(letters) < count:
        raise OpValueError(f"einsum: too many distinct indices (at most {len(string.ascii_letters)})")
    return letters[:count]


def normalize_subscripts(subscripts: str, shapes: list[tuple[int, ...]]) -> str:
    """NumPy's einsum subscripts as an explicit ``"in,in->out"`` string without ``...``; checks
    them against the operands' shapes (errors name einsum, the operand and the shapes)."""
    if not isinstance(subscripts, str):
        raise OpTypeError(f"einsum: subscripts must be a string, got {type(subscripts).__name__} (the "
                          f"interleaved form einsum(a, [0, 1], b, [1, 2]) is not supported)")
    text = subscripts.replace(" ", "")
    if text.count("->") > 1:
        raise OpValueError(f"einsum: subscripts {subscripts!r} have more than one '->'")
    lhs, arrow, rhs = text.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise OpValueError(f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s), but "
                           f"{len(shapes)} were given")
    for term in terms + ([rhs] if arrow else []):
        rest = term.replace("...", "", 1)
        bad = [c for c in rest if c not in string.ascii_letters]
        if bad:
            raise OpValueError(f"einsum: subscripts {subscripts!r} contain {bad[0]!r}: indices are letters, "
                               f"with at most one '...' per operand")
    counts = []
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        letters = len(term.replace("...", ""))
        if "..." in term:
            if letters > len(shape):
                raise OpValueError(f"einsum: operand {k} has shape {shape}, fewer axes than the {letters} "
                                   f"indices of {term!r}")
            counts.append(len(shape) - letters)
        else:
            if letters != len(shape):
                raise OpValueError(f"einsum: operand {k} has shape {shape} ({len(shape)} axes), but its "
                                   f"subscripts {term!r} name {letters}")
            counts.append(0)
    ellipsis = _fresh(text, max(counts, default=0))
    expanded = [term.replace("...", "".join(ellipsis[len(ellipsis) - n:])) for term, n in zip(terms, counts)]
    if arrow:
        if "..." not in rhs and any(counts):
            raise OpValueError(f"einsum: subscripts {subscripts!r}: the operands have '...' axes, so the "
                               f"output must have '...' too")
        output = rhs.replace("...", "".join(ellipsis))
        unknown = [c for c in output if not any(c in t for t in expanded)]
        if unknown:
            raise OpValueError(f"einsum: output index {unknown[0]!r} of {subscripts!r} is not in any operand")
        if len(set(output)) != len(output):
            raise OpValueError(f"einsum: the output {rhs!r} repeats an index")
    else:
        tally = Counter(c for t in terms for c in t.replace("...", ""))
        output = "".join(ellipsis) + "".join(sorted(c for c, n in tally.items() if n == 1))
    sizes: dict[str, tuple[int, int]] = {}
    for k, (term, shape) in enumerate(zip(expanded, shapes)):
        for c, n in zip(term, shape):
            known = sizes.get(c)
            if known is None or known[0] == 1:
                sizes[c] = (n, k)
            elif n != known[0] and n != 1:
                raise OpValueError(f"einsum: index {c!r} has size {known[0]} in operand {known[1]} (shape "
                                   f"{shapes[known[1]]}) but {n} in operand {k} (shape {shape})")
    return ",".join(expanded) + "->" + output


def _einsum_impl(*operands: Any, subscripts: str, optimize: Any) -> Any:
    return np.einsum(subscripts, *operands, optimize=optimize)


einsum_p = Primitive("einsum", _einsum_impl, ("operands",))


def _operand_cotangent(g: Any, inputs: tuple, k: int, subscripts: str, optimize: Any) -> Any:
    terms, output = _split(subscripts)
    target = terms[k]
    shape = shape_of(inputs[k])
    others = [output] + [t for j, t in enumerate(terms) if j != k]
    operands = [g] + [x for j, x in enumerate(inputs) if j != k]
    sizes = {c: n for t, x in zip(others, operands) for c, n in zip(t, shape_of(x)) if n != 1}
    fresh = iter(_fresh(subscripts, len(target)))
    distinct = []
    for position, c in enumerate(target):
        if c in distinct:  # a diagonal: a fresh index, joined to the first by an identity matrix
            f = next(fresh)
            others.append(c + f)
            operands.append(np.eye(shape[position], dtype=dtype_of(g)))
            distinct.append(f)
        else:
            distinct.append(c)
    available = set("".join(others))
    kept = "".join(c for c in distinct if c in available)
    grad = einsum_p(*operands, subscripts=",".join(others) + "->" + kept, optimize=optimize)
    missing = tuple(i for i, c in enumerate(distinct) if c not in available)
    if missing:  # summed within operand k only: its cotangent is the same along those axes
        grad = expand_dims_p(grad, axes=missing)
    got = tuple(1 if c not in available else sizes.get(c, 1) for c in distinct)
    if got != shape:
        reduced = tuple(1 if n == 1 else m for m, n in zip(got, shape))
        if reduced != got:  # an axis of length 1 in operand k was broadcast
            grad = sum_to_p(grad, shape=reduced)
        if reduced != shape:
            grad = broadcast_to_p(grad, shape=shape)
    return grad


def _einsum_vjp(g: Any, out: Any, needs: tuple, inputs: tuple, params: dict) -> list:
    return [_operand_cotangent(g, inputs, k, **params) if need else None for k, need in enumerate(needs)]


def _einsum_jvp(tangents: list, out: Any, inputs: tuple, params: dict) -> Any:
    total = None
    for k, t in enumerate(tangents):
        if t is None:
            continue
        part = einsum_p(*inputs[:k], t, *inputs[k + 1:], **params)
        total = part if total is None else total + part
    return total


einsum_p.defvjp_joint(_einsum_vjp)
einsum_p.defjvp_joint(_einsum_jvp)


def einsum_batch_rule(args: list, dims: list, subscripts: str, optimize: Any) -> tuple[Any, Any]:
    terms, output = _split(subscripts)
    (batch,) = _fresh(subscripts, 1)
    moved, batched_terms = [], []
    for x, d, term in zip(args, dims, terms):
        if d is None:
            moved.append(x)
            batched_terms.append(term)
        else:
            rank = len(shape_of(x))
            moved.append(x if d == 0 else transpose_p(x, perm=(d,) + tuple(a for a in range(rank) if a != d)))
            batched_terms.append(batch + term)
    return einsum_p(*moved, subscripts=",".join(batched_terms) + "->" + batch + output, optimize=optimize), 0


def einsum(subscripts: str, *operands: ArrayLike, optimize: Any = False) -> Variable:
    """Einstein summation with NumPy's subscripts (``"ij,jk->ik"``, implicit output, ``...``,
    repeated indices); differentiable in every operand. ``optimize`` is passed to NumPy."""
    if not operands:
        raise OpValueError("einsum: no operands given")
    xs = [array_operand(x, "einsum", f"operands[{k}]") for k, x in enumerate(operands)]
    normalized = normalize_subscripts(subscripts, [shape_of(x) for x in xs])
    return result(einsum_p(*xs, subscripts=normalized, optimize=optimize))


# -- products made of matmul -------------------------------------------------------------------
def _contract(a: Any, b: Any, axes_a: list[int], axes_b: list[int]) -> Any:
    """The tensordot of a and b over the given axes, as one matrix product."""
    sa, sb = shape_of(a), shape_of(b)
    free_a = [i for i in range(len(sa)) if i not in axes_a]
    free_b = [i for i in range(len(sb)) if i not in axes_b]
    size = int(np.prod([sa[i] for i in axes_a], dtype=np.int64))
    perm_a, perm_b = tuple(free_a + axes_a), tuple(axes_b + free_b)
    if perm_a != tuple(range(len(sa))):
        a = transpose_p(a, perm=perm_a)
    if perm_b != tuple(range(len(sb))):
        b = transpose_p(b, perm=perm_b)
    rows = int(np.prod([sa[i] for i in free_a], dtype=np.int64))
    cols = int(np.prod([sb[i] for i in free_b], dtype=np.int64))
    product = matmul_p(reshape_p(a, shape=(rows, size)), reshape_p(b, shape=(size, cols)))
    return reshape_p(product, shape=tuple(sa[i] for i in free_a) + tuple(sb[i] for i in free_b))


def _axes_list(axes: Any, ndim: int, shape: tuple, arg: str) -> list[int]:
    items = list(axes) if isinstance(axes, (list, tuple)) else [axes]
    out = [axis_index(a, ndim, "tensordot", arg, shape=shape) for a in items]
    if len(set(out)) != len(out):
        raise OpValueError(f"tensordot: argument {arg}={axes!r} repeats an axis of shape {shape}")
    return out


def tensordot(a: ArrayLike, b: ArrayLike, axes: Any = 2) -> Variable:
    """Sum products over the last ``axes`` axes of a and the first of b, or over the axes
    ``(axes_a, axes_b)`` (NumPy's tensordot)."""
    a, b = array_operand(a, "tensordot", "a"), array_operand(b, "tensordot", "b")
    sa, sb = shape_of(a), shape_of(b)
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        count = int(axes)
        if not 0 <= count <= min(len(sa), len(sb)):
            raise OpValueError(f"tensordot: axes={count} does not fit a of shape {sa} and b of shape {sb}")
        axes_a, axes_b = list(range(len(sa) - count, len(sa))), list(range(count))
    elif isinstance(axes, (list, tuple)) and len(axes) == 2:
        axes_a = _axes_list(axes[0], len(sa), sa, "axes[0]")
        axes_b = _axes_list(axes[1], len(sb), sb, "axes[1]")
        if len(axes_a) != len(axes_b):
            raise OpValueError(f"tensordot: axes {axes!r} pair {len(axes_a)} axes of a with {len(axes_b)} of b")
    else:
        raise OpTypeError(f"tensordot: axes must be an int or a pair of axis lists, got {axes!r}")
    for i, j in zip(axes_a, axes_b):
        if sa[i] != sb[j]:
            raise OpValueError(f"tensordot: shape mismatch for the sum: axis {i} of a (shape {sa}) has length "
                               f"{sa[i]}, axis {j} of b (shape {sb}) has {sb[j]}")
    return result(_contract(a, b, axes_a, axes_b))


def dot(a: ArrayLike, b: ArrayLike) -> Variable:
    """NumPy's dot: a product for scalars, the inner product of vectors, the matrix product of
    matrices, and in general the sum over the last axis of a and the second-to-last of b."""
    a, b = array_operand(a, "dot", "a"), array_operand(b, "dot", "b")
    sa, sb = shape_of(a), shape_of(b)
    if not sa or not sb:
        return result(mul_p(a, b))
    j = len(sb) - 2 if len(sb) >= 2 else 0
    if sa[-1] != sb[j]:
        raise OpValueError(f"dot: shapes {sa} and {sb} are not aligned: {sa[-1]} (dim {len(sa) - 1} of a) != "
                           f"{sb[j]} (dim {j} of b)")
    return result(_contract(a, b, [len(sa) - 1], [j]))


def inner(a: ArrayLike, b: ArrayLike) -> Variable:
    """NumPy's inner: the sum over the last axes of a and b (a product for scalars)."""
    a, b = array_operand(a, "inner", "a"), array_operand(b, "inner", "b")
    sa, sb = shape_of(a), shape_of(b)
    if not sa or not sb:
        return result(mul_p(a, b))
    if sa[-1] != sb[-1]:
        raise OpValueError(f"inner: the last axes of a (shape {sa}) and b (shape {sb}) differ in length")
    return result(_contract(a, b, [len(sa) - 1], [len(sb) - 1]))


def outer(a: ArrayLike, b: ArrayLike) -> Variable:
    """NumPy's outer: out[i, j] = a[i] * b[j] of the flattened a and b."""
    a, b = array_operand(a, "outer", "a"), array_operand(b, "outer", "b")
    return result(mul_p(reshape_p(a, shape=(-1, 1)), reshape_p(b, shape=(1, -1))))


def kron(a: ArrayLike, b: ArrayLike) -> Variable:
    """NumPy's kron: the Kronecker product, blocks of b scaled by the elements of a."""
    a, b = array_operand(a, "kron", "a"), array_operand(b, "kron", "b")
    sa, sb = shape_of(a), shape_of(b)
    rank = max(len(sa), len(sb))
    sa, sb = (1,) * (rank - len(sa)) + sa, (1,) * (rank - len(sb)) + sb
    spread_a = reshape_p(a, shape=tuple(n for m in sa for n in (m, 1)))
    spread_b = reshape_p(b, shape=tuple(n for m in sb for n in (1, m)))
    return result(reshape_p(mul_p(spread_a, spread_b), shape=tuple(m * n for m, n in zip(sa, sb))))


def _last_axis_components(x: Any, axis: Any, arg: str) -> list[Any]:
    shape = shape_of(x)
    axis = axis_index(axis, len(shape), "cross", arg, shape=shape)
    if shape[axis] not in (2, 3):
        raise OpValueError(f"cross: the vectors of {arg[-1]} (axis {axis} of shape {shape}) have {shape[axis]} "
                           f"components; a cross product needs 2 or 3")
    index = (slice(None),) * axis
    return [getitem_p(x, index=index + (k,)) for k in range(shape[axis])]


def cross(a: ArrayLike, b: ArrayLike, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis: int | None = None) -> Variable:
    """NumPy's cross product of vectors of 3 (or 2) components along ``axisa``/``axisb``, placed
    along ``axisc`` of the result (``axis`` sets all three); leading axes broadcast."""
    a, b = array_operand(a, "cross", "a"), array_operand(b, "cross", "b")
    if axis is not None:
        axisa = axisb = axisc = axis
    ca, cb = _last_axis_components(a, axisa, "axisa"), _last_axis_components(b, axisb, "axisb")
    if len(ca) == 2 and len(cb) == 2:  # the z component only
        return result(ca[0] * cb[1] - ca[1] * cb[0])
    a0, a1 = ca[0], ca[1]
    b0, b1 = cb[0], cb[1]
    a2, b2 = (ca[2] if len(ca) == 3 else None), (cb[2] if len(cb) == 3 else None)

    def times(u: Any, v: Any) -> Any:
        return None if u is None or v is None else u * v

    def minus(u: Any, v: Any) -> Any:
        if u is None:
            return -v
        return u if v is None else u - v

    parts = [minus(times(a1, b2), times(a2, b1)), minus(times(a2, b0), times(a0, b2)), a0 * b1 - a1 * b0]
    shape = np.broadcast_shapes(*[shape_of(p) for p in parts])
    parts = [p if shape_of(p) == shape else broadcast_to_p(p, shape=shape) for p in parts]
    axisc = axis_index(axisc, len(shape) + 1, "cross", "axisc", shape=shape + (3,))
    return result(concat_p(*[expand_dims_p(p, axes=(axisc,)) for p in parts], axis=axisc))


