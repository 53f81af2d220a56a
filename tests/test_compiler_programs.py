"""Compiled Functions against eager execution: random programs, each optimisation pass, edge cases.

Every test compares a compiled result with the eager result of the same Python function (or
with NumPy), in float64: values, first derivatives and, for the random programs, second ones.
"""


import numpy as np
import pytest
from compiled_check import assert_compiled_matches_eager

import tapegrad as tg
from tapegrad.autodiff.broadcast import astype_p, broadcast_like_p, sum_like_p, sum_to_p
from tapegrad.compiler import codegen, passes
from tapegrad.compiler.ir import Fused, Graph, Node, Stacked, Value
from tapegrad.ops.elementwise import add_p, mul_p
from tapegrad.ops.shape import expand_dims_p, squeeze_p


# -- helpers --------------------------------------------------------------------------------------
def variables(arrays):
    return [tg.Variable(a, dtype=a.dtype) for a in arrays]


def derivatives(fn, arrays, coefs):
    """[value, first derivatives w.r.t. every input, second derivatives of sum(coef * first)]."""
    vs = variables(arrays)
    with tg.GradientTape() as outer:
        with tg.GradientTape() as inner:
            value = fn(*vs)
        grads = inner.gradient(value, vs, unconnected_gradients="zero")
        probe = tg.reduce_sum(grads[0] * coefs[0])
        for g1, c in zip(grads[1:], coefs[1:]):
            probe = probe + tg.reduce_sum(g1 * c)
    hessian_probes = outer.gradient(probe, vs, unconnected_gradients="zero")
    return [value.value()] + [g1.value() for g1 in grads] + [h.value() for h in hessian_probes]


def value_and_grads(fn, arrays):
    """The value of fn and its gradients w.r.t. every input (None where unconnected)."""
    vs = variables(arrays)
    with tg.GradientTape() as tape:
        value = fn(*vs)
    grads = tape.gradient(value, vs)
    return value.value(), [None if g1 is None else g1.value() for g1 in grads]


def assert_same(got, expected, rtol=1e-9, atol=1e-12, what=""):
    assert len(got) == len(expected)
    for k, (c, e) in enumerate(zip(got, expected)):
        if e is None:
            assert c is None, f"{what} item {k}: expected None, got {c!r}"
            continue
        assert c is not None, f"{what} item {k}: expected an array, got None"
        assert np.shape(c) == np.shape(e), f"{what} item {k}: shape {np.shape(c)} != {np.shape(e)}"
        np.testing.assert_allclose(c, e, rtol=rtol, atol=atol, err_msg=f"{what} item {k}")


def base(f):
    """The compiled variant of a Function traced for one signature."""
    (entry,) = f._cache.values()
    return entry.base


def op_names(graph):
    """The primitive names of a graph, fused and stacked chains flattened into their steps."""
    names = []
    for node in graph.nodes:
        if node.effect is not None:
            names.append(node.effect.name)
        elif isinstance(node.op, (Fused, Stacked)):
            names.extend(p.name for p, _, _ in node.op.steps)
        else:
            names.append(node.op.name)
    return names


def constants(graph):
    """The constants that the nodes of a graph (and the steps of its fused chains) read."""
    found = []
    for node in graph.nodes:
        steps = node.op.steps if isinstance(node.op, (Fused, Stacked)) else [(None, node.inputs, None)]
        found.extend(i.payload for _, ins, _ in steps for i in ins if isinstance(i, Value) and i.kind == "const")
    return found


def forward_listing(f, *args):
    return str(f.graph(*args)).split("\n\n")[0]


# -- 1. random programs: compiled equals eager -------------------------------------------------
POOL = {(), (1,), (3,), (1, 1), (1, 3), (2, 1), (2, 3)}  # shapes that all broadcast together to (2, 3)
UNARY = [
    ("tanh", tg.tanh), ("sin", tg.sin), ("sigmoid", tg.sigmoid), ("softplus", tg.softplus), ("neg", tg.neg),
    ("square", tg.square), ("log1p_sq", lambda v: tg.log(tg.square(v) + 1.0)),
    ("exp_tanh", lambda v: tg.exp(tg.tanh(v))),
]
BINARY = [
    ("add", tg.add), ("sub", tg.sub), ("mul", tg.mul), ("safe_div", lambda a, b: a / (tg.square(b) + 1.0)),
    ("maximum", tg.maximum), ("lin", lambda a, b: 0.5 * a - b),
]
REDUCTIONS = [("reduce_sum", tg.reduce_sum), ("reduce_mean", tg.reduce_mean), ("reduce_max", tg.reduce_max),
              ("logsumexp", tg.logsumexp)]
# shape -> [(index, result shape)]: ints, slices, None, Ellipsis, integer arrays (with repeated indices)
INDEXES = {
    (2, 3): [((0,), (3,)), ((slice(1, None),), (1, 3)), ((slice(None), slice(1, 2)), (2, 1)),
             ((slice(None), slice(None, None, -1)), (2, 3)), ((slice(None), [2, 0, 1]), (2, 3)),
             ((None, 1), (1, 3)), ((Ellipsis, slice(0, 1)), (2, 1))],
    (3,): [((1,), ()), ((slice(None, None, -1),), (3,)), (([0, 0, 2],), (3,)), ((None,), (1, 3)),
           ((slice(1, 2),), (1,))],
    (1, 3): [((0,), (3,)), ((slice(None), slice(None, 1)), (1, 1))],
    (2, 1): [((1,), (1,)), ((slice(None, None, -1),), (2, 1)), (([1, 1, 0],), None)],
    (1, 1): [((0,), (1,)), ((0, 0), ())],
    (1,): [((0,), ())],
}


def reduced_shape(shape, axis, keepdims):
    return np.sum(np.zeros(shape), axis=axis, keepdims=keepdims).shape


class RandomProgram:
    """A random program of x (2, 3), y (3,), s (), r (1, 3) and a matrix w (3, 3), valid by
    construction: every step knows the shapes of the values it picks, and every value has a
    shape of POOL (w is used only by matrix products). The result is a scalar to which every
    computed value contributes, so no step is dead code."""

    input_shapes = [(2, 3), (3,), (), (1, 3), (3, 3)]

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.shapes = [(2, 3), (3,), (), (1, 3)]
        self.steps = []
        self.text = ["v0 = x", "v1 = y", "v2 = s", "v3 = r"]
        makers = [self.unary, self.binary, self.binary, self.matmul, self.reduce, self.softmax, self.reshape,
                  self.transpose, self.expand_dims, self.getitem, self.concat, self.where, self.clip,
                  self.broadcast]
        for _ in range(int(self.rng.integers(8, 16))):
            makers[int(self.rng.integers(len(makers)))]()

    def __call__(self, x, y, s, r, w):
        values = [x, y, s, r]
        for step in self.steps:
            values.append(step(values, w))
        total = tg.reduce_sum(values[-1] * values[-1])
        for k, v in enumerate(values[4:-1]):
            total = total + tg.reduce_mean(tg.tanh(v)) * (0.5 + 0.1 * k)
        return total

    def __str__(self):
        return "\n".join(self.text)

    # -- building -------------------------------------------------------------------------------
    def pick(self, ok=lambda shape: True):
        candidates = [i for i, s in enumerate(self.shapes) if ok(s)]
        if not candidates:
            return None
        # mostly recent values (deep programs), sometimes any value (inputs used again)
        recent = self.rng.random() < 0.7
        weights = np.array([1.0 + i for i in candidates]) if recent else np.ones(len(candidates))
        return int(self.rng.choice(candidates, p=weights / weights.sum()))

    def choice(self, items):
        return items[int(self.rng.integers(len(items)))]

    def add(self, text, fn, shape):
        assert tuple(shape) in POOL, (text, shape)
        self.text.append(f"v{len(self.shapes)} = {text}")
        self.steps.append(fn)
        self.shapes.append(tuple(shape))

    def unary(self):
        name, fn = self.choice(UNARY)
        i = self.pick()
        self.add(f"{name}(v{i})", lambda v, w: fn(v[i]), self.shapes[i])

    def binary(self):
        name, fn = self.choice(BINARY)
        i, j = self.pick(), self.pick()
        self.add(f"{name}(v{i}, v{j})", lambda v, w: fn(v[i], v[j]),
                 np.broadcast_shapes(self.shapes[i], self.shapes[j]))

    def matmul(self):
        kind = int(self.rng.integers(4))
        if kind == 0 and (i := self.pick(lambda s: s in ((2, 3), (1, 3)))) is not None:
            tb = bool(self.rng.integers(2))
            self.add(f"matmul(v{i}, w, transpose_b={tb})", lambda v, w: tg.matmul(v[i], w, transpose_b=tb),
                     self.shapes[i])
        elif kind == 1 and (i := self.pick(lambda s: s == (2, 3))) is not None:
            self.add(f"transpose(w @ transpose(v{i}))", lambda v, w: tg.transpose(w @ tg.transpose(v[i])), (2, 3))
        elif kind == 2 and (i := self.pick(lambda s: s == (3,))) is not None:
            self.add(f"matmul(expand_dims(v{i}, 0), w)", lambda v, w: tg.matmul(tg.expand_dims(v[i], 0), w), (1, 3))
        else:
            i = self.pick(lambda s: s in ((2, 3), (1, 3)))
            j = self.pick(lambda s: s == (1, 3))
            self.add(f"matmul(v{i}, v{j}, transpose_b=True)", lambda v, w: tg.matmul(v[i], v[j], transpose_b=True),
                     (self.shapes[i][0], 1))

    def reduce(self):
        name, fn = self.choice(REDUCTIONS)
        i = self.pick()
        shape = self.shapes[i]
        axis = self.choice([None, 0, -1]) if shape else None
        keepdims = bool(self.rng.integers(2))
        if reduced_shape(shape, axis, keepdims) not in POOL:
            keepdims = True  # keepdims shapes always broadcast with the pool
        self.add(f"{name}(v{i}, axis={axis}, keepdims={keepdims})",
                 lambda v, w: fn(v[i], axis=axis, keepdims=keepdims), reduced_shape(shape, axis, keepdims))

    def softmax(self):
        name, fn = self.choice([("softmax", tg.softmax), ("log_softmax", tg.log_softmax)])
        i = self.pick(lambda s: len(s) >= 1)
        axis = self.choice([0, -1])
        self.add(f"{name}(v{i}, axis={axis})", lambda v, w: fn(v[i], axis=axis), self.shapes[i])

    def reshape(self):
        i = self.pick()
        shape = self.shapes[i]
        if shape == (2, 3):
            self.add(f"transpose(reshape(v{i}, (3, 2)))", lambda v, w: tg.transpose(tg.reshape(v[i], (3, 2))),
                     (2, 3))
        elif shape == (2, 1):
            self.add(f"expand_dims(reshape(v{i}, (2,)), -1)",
                     lambda v, w: tg.expand_dims(tg.reshape(v[i], (2,)), -1), (2, 1))
        else:
            target = {(): (1, 1), (1,): (1, 1), (3,): (1, 3), (1, 1): (), (1, 3): (3,)}[shape]
            self.add(f"reshape(v{i}, {target})", lambda v, w: tg.reshape(v[i], target), target)

    def transpose(self):
        i = self.pick()
        shape = self.shapes[i]
        if shape == (2, 3):
            self.add(f"reshape(transpose(v{i}, (1, 0)), (2, 3))",
                     lambda v, w: tg.reshape(tg.transpose(v[i], (1, 0)), (2, 3)), (2, 3))
        elif shape in ((2, 1), (1, 3)):
            self.add(f"transpose(transpose(v{i}))", lambda v, w: tg.transpose(tg.transpose(v[i])), shape)
        else:
            self.add(f"v{i}.T", lambda v, w: v[i].T, shape)

    def expand_dims(self):
        i = self.pick(lambda s: s in ((), (1,), (3,)))
        shape = self.shapes[i]
        axis = -1 if shape == (1,) and self.rng.integers(2) else 0
        self.add(f"expand_dims(v{i}, {axis})", lambda v, w: tg.expand_dims(v[i], axis), (1,) + shape)

    def getitem(self):
        i = self.pick(lambda s: s in INDEXES)
        index, shape = self.choice(INDEXES[self.shapes[i]])
        if shape is None:  # rows [1, 1, 0] of a (2, 1): a (3, 1), then back to (2, 1) by a slice
            self.add(f"v{i}[{index}][1:]", lambda v, w: v[i][index][1:], (2, 1))
        else:
            self.add(f"v{i}[{index}]", lambda v, w: v[i][index], shape)

    def concat(self):
        i = self.pick(lambda s: s != ())
        shape = self.shapes[i]
        j = self.pick(lambda s: s == shape)
        if shape == (1, 3):
            self.add(f"concat([v{i}, v{j}], 0)", lambda v, w: tg.concat([v[i], v[j]], axis=0), (2, 3))
        elif shape == (2, 1):
            self.add(f"concat([v{i}, v{j}, v{i}], -1)", lambda v, w: tg.concat([v[i], v[j], v[i]], axis=-1), (2, 3))
        elif shape == (2, 3):
            self.add(f"concat([v{i}, v{j}], 0)[1:3]", lambda v, w: tg.concat([v[i], v[j]], axis=0)[1:3], (2, 3))
        elif shape == (1,):
            self.add(f"concat([v{i}, v{j}, v{j}])", lambda v, w: tg.concat([v[i], v[j], v[j]]), (3,))
        elif shape == (3,):
            self.add(f"reshape(concat([v{i}, v{j}]), (2, 3))",
                     lambda v, w: tg.reshape(tg.concat([v[i], v[j]], axis=0), (2, 3)), (2, 3))
        else:  # (1, 1)
            self.add(f"concat([v{i}, v{j}, v{i}], 1)", lambda v, w: tg.concat([v[i], v[j], v[i]], axis=1), (1, 3))

    def where(self):
        a, b, p, q = (self.pick() for _ in range(4))
        if self.rng.integers(2):
            shape = np.broadcast_shapes(*(self.shapes[k] for k in (a, b, p, q)))
            self.add(f"where(v{a} > v{b}, v{p}, v{q})", lambda v, w: tg.where(v[a] > v[b], v[p], v[q]), shape)
        else:
            shape = np.broadcast_shapes(self.shapes[a], self.shapes[p], self.shapes[q])
            self.add(f"where(v{a} <= 0.1, v{p}, 2 * v{q})", lambda v, w: tg.where(v[a] <= 0.1, v[p], 2.0 * v[q]),
                     shape)

    def clip(self):
        i = self.pick()
        if self.rng.integers(2):
            self.add(f"clip_by_value(v{i}, -0.6, 0.8)", lambda v, w: tg.clip_by_value(v[i], -0.6, 0.8),
                     self.shapes[i])
        else:
            j = self.pick()
            self.add(f"maximum(v{i}, 0.3 * v{j})", lambda v, w: tg.maximum(v[i], 0.3 * v[j]),
                     np.broadcast_shapes(self.shapes[i], self.shapes[j]))

    def broadcast(self):
        i = self.pick()
        self.add(f"broadcast_to(v{i}, (2, 3))", lambda v, w: tg.broadcast_to(v[i], (2, 3)), (2, 3))


def test_random_programs_cover_every_kind_of_op():
    """The seeds used below build programs with every op family this module claims to test."""
    text = "\n".join(str(RandomProgram(seed)) for seed in range(15))
    for name in ["matmul", "reduce_sum", "reduce_mean", "reduce_max", "logsumexp", "softmax", "log_softmax",
                 "reshape", "transpose", "expand_dims", "concat", "where", "clip_by_value", "maximum",
                 "broadcast_to", "]", "axis=None", "axis=0", "axis=-1", "keepdims=True", "keepdims=False"]:
        assert name in text, name


@pytest.mark.parametrize("seed", range(15))
def test_random_programs_with_shapes_compiled_equal_eager(seed):
    program = RandomProgram(seed)
    rng = np.random.default_rng(1000 + seed)
    inputs = [[rng.normal(size=s) for s in program.input_shapes] for _ in range(2)]
    coefs = [rng.normal(size=s) for s in program.input_shapes]
    eager = [derivatives(program, arrays, coefs) for arrays in inputs]
    for results in eager:
        assert all(np.all(np.isfinite(r)) for r in results), str(program)
    assert any(np.any(h != 0) for h in eager[0][6:]), "second derivatives are all zero: a weak program"
    compiled = tg.Function(program)
    for call in range(4):  # trace, then the compiled graphs (forward, backward, backward of backward)
        k = call % 2  # other input values than the trace's, then the trace's again
        assert_same(derivatives(compiled, inputs[k], coefs), eager[k], what=f"call {call}\n{program}\n")
    assert compiled.trace_count == 1
    backward = base(compiled).backward
    assert backward is not None and backward.trace_count == 1
    assert base(backward).backward.trace_count == 1


# -- 2. the passes, one by one ------------------------------------------------------------------
def test_dead_code_elimination_drops_an_unused_branch_but_keeps_effects():
    sink = tg.Variable(np.zeros(3), dtype="float64", trainable=False)

    def f(x):
        unused = tg.exp(x) * 3.0 + tg.reduce_sum(tg.sin(x), axis=0)  # noqa: F841 - dead code
        sink.assign(tg.cos(x[0]))  # an effect: its input is computed although nothing uses it
        return tg.tanh(x) * 2.0

    compiled = tg.Function(f)
    x = np.array([[0.1, -0.4, 0.7], [1.5, 0.2, -2.0]])
    listing = forward_listing(compiled, x)
    traced, optimised = op_names(base(compiled).traced), op_names(base(compiled).graph)
    assert {"exp", "sin", "reduce_sum"} <= set(traced)
    assert not {"exp", "sin", "reduce_sum"} & set(optimised)
    assert "exp(" not in listing and "sin(" not in listing
    assert optimised.count("assign") == 1 and "cos" in optimised
    x2 = x[::-1] * 0.5
    np.testing.assert_allclose(compiled(x2).value(), np.tanh(x2) * 2.0, rtol=1e-15)
    np.testing.assert_allclose(sink.value(), np.cos(x2[0]), rtol=1e-15)


def test_common_subexpressions_are_computed_once():
    w = tg.Variable(np.array([0.5, -1.0, 2.0]), dtype="float64")

    def f(x):
        a = tg.exp(tg.sin(x * w))
        b = tg.exp(tg.sin(x * w))  # the same expression: merged
        c = tg.reduce_sum(x, axis=0) + tg.reduce_sum(x, axis=0)  # the same reduction twice: merged
        d = tg.reduce_sum(x, axis=1, keepdims=True)  # other parameters: kept
        e = x * 2.0 + x * 3.0  # other constants: kept
        return a * b + c + d + e

    compiled = tg.Function(f)
    x = np.array([[0.1, -0.4, 0.7], [1.5, 0.2, -2.0]])
    compiled(x)
    names = op_names(base(compiled).traced)
    assert names.count("exp") == 2 and names.count("sin") == 2 and names.count("reduce_sum") == 3
    names = op_names(base(compiled).graph)
    assert names.count("exp") == 1 and names.count("sin") == 1 and names.count("reduce_sum") == 2
    reductions = [n.params for n in base(compiled).graph.nodes if getattr(n.op, "name", "") == "reduce_sum"]
    assert sorted(p["axis"] for p in reductions) == [(0,), (1,)]
    assert op_names(base(compiled).traced).count("mul") == 5 and names.count("mul") == 4  # x * w once
    assert {2.0, 3.0} <= {float(c) for c in constants(base(compiled).graph) if np.ndim(c) == 0}
    for xv in (x, -x * 0.3):
        expected = np.exp(np.sin(xv * w.value())) ** 2 + 2 * xv.sum(0) + xv.sum(1, keepdims=True) + 5 * xv
        np.testing.assert_allclose(compiled(xv).value(), expected, rtol=1e-13)
        value, grads = value_and_grads(compiled, [xv])
        eager_value, eager_grads = value_and_grads(f, [xv])
        assert_same([value] + grads, [eager_value] + eager_grads, rtol=1e-13)


def test_common_subexpressions_are_never_merged_across_an_assign():
    """passes.py: CSE does not merge across an effect, which may have changed a captured Variable."""

    def make():
        v = tg.Variable(np.array([1.0, 2.0, 3.0]), dtype="float64")

        def f(x):
            before = tg.exp(v * 0.5)
            v.assign(v + x)
            after = tg.exp(v * 0.5)  # the same expression as `before`, but v has changed
            again = tg.exp(v * 0.5)  # no effect in between: merged with `after`
            return before, after, again

        return v, f

    v_eager, eager = make()
    v_compiled, f = make()
    compiled = tg.Function(f)
    for k in range(4):
        x = np.array([0.5, -1.0, 0.25]) * (k + 1)
        got, expected = compiled(x), eager(x)
        assert_same([r.value() for r in got], [r.value() for r in expected], rtol=1e-15, what=f"call {k}")
        np.testing.assert_array_equal(v_compiled.value(), v_eager.value())
    assert compiled.trace_count == 1
    names = op_names(base(compiled).graph)
    assert names.count("exp") == 2
    assert names.index("exp") < names.index("assign") < len(names) - 1 - names[::-1].index("exp")


def test_constant_folding_in_a_traced_gradient():
    """d/dx sum(x * 3 * 2 + sin(x)): the two constant factors of the backward pass fold into one
    constant (6 where the seed of ones was), computed at compile time."""

    def f(x):
        with tg.GradientTape() as tape:
            tape.watch(x)
            y = tg.reduce_sum(x * 3.0 * 2.0 + tg.sin(x), axis=-1, keepdims=True)
        return tape.gradient(y, x)

    compiled = tg.Function(f)
    x = np.array([[0.5], [-1.25], [2.0]])
    listing = forward_listing(compiled, x)
    assert any(np.array_equal(c, np.full((3, 1), 6.0)) for c in constants(base(compiled).graph)), listing
    assert op_names(base(compiled).traced).count("mul") >= 2 and "mul" not in op_names(base(compiled).graph)
    assert "mul(" not in listing and "3.0" not in listing and "2.0" not in listing
    for xv in (x, x * -0.7):
        np.testing.assert_allclose(compiled(xv).value(), np.cos(xv) + 6.0, rtol=1e-15)
        np.testing.assert_allclose(compiled(xv).value(), f(tg.Variable(xv)).value(), rtol=1e-15)


def test_constant_folding_of_a_hand_made_graph():
    """passes.optimize folds a node whose inputs are all constants, then the rest of the chain."""
    x = Value("input", (3,), np.dtype("float64"), 0)
    two = Value("const", (), np.dtype("float64"), np.float64(2.0))
    three = Value("const", (3,), np.dtype("float64"), np.array([3.0, 4.0, 5.0]))
    five = Value("node", (3,), np.dtype("float64"))
    five.payload = Node(add_p, [two, three], None, five)
    out = Value("node", (3,), np.dtype("float64"))
    out.payload = Node(mul_p, [x, five], None, out)
    graph = Graph([x], [], [five.payload, out.payload], [out])
    optimised = passes.optimize(graph)
    assert [n.op.name for n in optimised.nodes] == ["mul"]
    folded = [i for i in optimised.nodes[0].inputs if i.kind == "const"]
    assert len(folded) == 1 and np.array_equal(folded[0].payload, [5.0, 6.0, 7.0])
    run = codegen.generate(optimised)
    xv = np.array([1.0, -2.0, 0.5])
    np.testing.assert_array_equal(run([xv], [])[0], xv * np.array([5.0, 6.0, 7.0]))
    assert [n.op.name for n in graph.nodes] == ["add", "mul"]  # the traced graph is left alone


# Each identity that passes.simplify claims: (name, function of v = sin(x) and x, the op, how many go).
SIMPLIFIED = [
    ("x * 1", lambda v, x: v * 1.0, "mul", 1),
    ("1 * x", lambda v, x: 1.0 * v, "mul", 1),
    ("x * ones", lambda v, x: v * np.ones(3), "mul", 1),
    ("x + -0.0", lambda v, x: v + (-0.0), "add", 1),
    ("-0.0 + x", lambda v, x: -0.0 + v, "add", 1),
    ("x - 0", lambda v, x: v - 0.0, "sub", 1),
    ("x / 1", lambda v, x: v / 1.0, "div", 1),
    ("x ** 1", lambda v, x: v ** 1.0, "pow", 1),
    ("x ** 2", lambda v, x: v ** 2.0, "pow", 1),
    ("nop", lambda v, x: tg.nop(v), "nop", 1),
    ("astype to its own dtype", lambda v, x: astype_p.apply(v, dtype=np.dtype("float64")), "astype", 1),
    ("sum_like of its own shape", lambda v, x: sum_like_p.apply(v, x), "sum_like", 1),
    ("broadcast_like of its own shape", lambda v, x: broadcast_like_p.apply(v, x), "broadcast_like", 1),
    ("sum_to its own shape", lambda v, x: sum_to_p.apply(v, shape=(2, 3)), "sum_to", 1),
    ("expand_dims of no axis", lambda v, x: expand_dims_p.apply(v, axes=()), "expand_dims", 1),
    ("squeeze of no axis", lambda v, x: squeeze_p.apply(v, axes=()), "squeeze", 1),
    ("reshape to its own shape", lambda v, x: tg.reshape(v, (2, 3)), "reshape", 1),
    ("broadcast_to its own shape", lambda v, x: tg.broadcast_to(v, (2, 3)), "broadcast_to", 1),
    ("neg of neg", lambda v, x: tg.neg(-v), "neg", 2),
    ("transpose of transpose", lambda v, x: tg.transpose(tg.transpose(v)), "transpose", 2),
    ("transpose of transpose, perms", lambda v, x: tg.transpose(tg.transpose(v, (1, 0)), (1, 0)), "transpose", 2),
]


@pytest.mark.parametrize("name, fn, removed, count", SIMPLIFIED, ids=[s[0] for s in SIMPLIFIED])
def test_algebraic_identities_are_simplified_and_gradients_still_flow(name, fn, removed, count):
    coef = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])

    def f(x):
        return tg.reduce_sum(fn(tg.sin(x), x) * coef)

    compiled = tg.Function(f)
    x = np.array([[0.3, -1.2, 2.0], [0.7, 1.1, -0.4]])
    listing = forward_listing(compiled, x)
    traced, optimised = op_names(base(compiled).traced), op_names(base(compiled).graph)
    square = name == "x ** 2"
    assert traced.count(removed) - optimised.count(removed) == count, listing
    assert len(optimised) == len(traced) - count + square, listing  # (x ** 2 becomes a square)
    if square:
        assert "square" in optimised and "square" not in traced
    for xv in (x, x * 0.5):
        value, (grad,) = value_and_grads(compiled, [xv])
        eager_value, (eager_grad,) = value_and_grads(f, [xv])
        assert float(value) == pytest.approx(float(eager_value), rel=1e-14)
        assert float(value) == pytest.approx(float(np.sum((np.sin(xv) ** (2 if square else 1)) * coef)), rel=1e-14)
        np.testing.assert_allclose(grad, eager_grad, rtol=1e-14)
        np.testing.assert_allclose(grad, np.cos(xv) * coef * (2 * np.sin(xv) if square else 1.0), rtol=1e-14)


def test_reshape_and_transpose_chains_compose_into_one_op():
    def f(x):
        a = tg.reshape(tg.reshape(tg.sin(x), (3, 4)), (12,))  # one reshape of sin(x)
        b = tg.transpose(tg.transpose(tg.cos(x), (1, 2, 0)), (1, 0, 2))  # one transpose, perm (2, 1, 0)
        return a, b

    compiled = tg.Function(f)
    x = np.random.default_rng(0).normal(size=(2, 3, 2))
    compiled(x)
    nodes = base(compiled).graph.nodes
    reshapes = [n for n in nodes if n.op.name == "reshape"]
    transposes = [n for n in nodes if n.op.name == "transpose"]
    assert len(reshapes) == 1 and reshapes[0].params["shape"] == (12,)
    assert reshapes[0].inputs[0].payload.op.name == "sin"
    assert len(transposes) == 1 and transposes[0].params["perm"] == (2, 1, 0)
    a, b = compiled(-x)
    np.testing.assert_array_equal(a.value(), np.sin(-x).reshape(12))
    np.testing.assert_array_equal(b.value(), np.transpose(np.cos(-x), (2, 1, 0)))
    with tg.GradientTape() as tape:
        xv = tg.Variable(x, dtype="float64")
        a, b = compiled(xv)
        loss = tg.reduce_sum(a * np.arange(12.0)) + tg.reduce_sum(b * b)
    expected = np.cos(x) * np.arange(12.0).reshape(x.shape) - 2 * np.cos(x) * np.sin(x)
    np.testing.assert_allclose(tape.gradient(loss, xv).value(), expected, rtol=1e-14)


@pytest.mark.parametrize("name, fn, kept", [
    ("x * 0 (NaN * 0 is NaN)", lambda v: v * 0.0, "mul"),
    ("x + 0.0 (-0.0 + 0.0 is +0.0)", lambda v: v + 0.0, "add"),
    ("x - -0.0 (-0.0 - -0.0 is +0.0)", lambda v: v - (-0.0), "sub"),
    ("x * 1 that broadcasts", lambda v: v * np.ones((2, 5)), "mul"),
    ("x ** 2 that makes a float of an int", lambda v: tg.cast(v * 10.0, "int64") ** 2.0, "pow"),
])
def test_not_identities_are_kept(name, fn, kept):
    """Rewrites that would change a value (a NaN, the sign of a zero, a shape, a dtype) are not made."""
    compiled = tg.Function(lambda x: fn(tg.sin(x)))
    x = np.array([0.0, -0.0, np.nan, 1.5, np.inf])
    with np.errstate(invalid="ignore"):
        for xv in (x, x[::-1]):
            got, expected = compiled(xv).value(), fn(tg.sin(tg.Variable(xv))).value()
            assert got.dtype == expected.dtype and got.shape == expected.shape
            np.testing.assert_array_equal(got, expected)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
    assert kept in op_names(base(compiled).graph)


def test_the_sign_of_a_zero_survives_adding_zero():
    """1 / (x + 0.0) at x = -0.0 is +inf: x + 0.0 is not x."""
    f = lambda x: 1.0 / (tg.sin(x) + 0.0)  # noqa: E731
    compiled = tg.Function(f)
    x = np.array([-0.0, 0.0, -1.0])
    with np.errstate(divide="ignore"):
        for _ in range(3):
            got, expected = compiled(x).value(), f(tg.Variable(x)).value()
            np.testing.assert_array_equal(got, expected)
            np.testing.assert_array_equal(got[:2], [np.inf, np.inf])


def test_elementwise_chains_are_fused_into_one_kernel():
    def f(x, y):
        a = tg.tanh(tg.sin(x) * 2.0 + y) - x  # one chain: one fused kernel
        b = tg.exp(a * 0.5)  # a has two uses: the chain ends at a
        c = tg.sigmoid(a)
        return b + c

    compiled = tg.Function(f)
    x, y = np.array([[0.1, -0.4, 0.7], [1.5, 0.2, -2.0]]), np.array([0.3, -0.3, 1.0])
    compiled(x, y)
    nodes = base(compiled).graph.nodes
    chains = [[p.name for p, _, _ in n.op.steps] if isinstance(n.op, Fused) else [n.op.name] for n in nodes]
    assert chains == [["sin", "mul", "add", "tanh", "sub"], ["sigmoid"], ["mul", "exp", "add"]]
    assert len(op_names(base(compiled).traced)) == 9
    users = [n for n in nodes if any(i is nodes[0].output for i in n.inputs)]
    assert len(users) == 2  # the shared value a stays a buffer that both of its uses read
    assert "fused {sin(" in forward_listing(compiled, x, y)
    for xv, yv in ((x, y), (x * -2.0, y[::-1])):
        a = np.tanh(np.sin(xv) * 2.0 + yv) - xv
        np.testing.assert_allclose(compiled(xv, yv).value(), np.exp(a * 0.5) + 1 / (1 + np.exp(-a)), rtol=1e-14)
        assert_same(value_and_grads(compiled, [xv, yv])[1], value_and_grads(f, [xv, yv])[1], rtol=1e-13)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_matmul_bias_and_activation_are_one_kernel(activation):
    rng = np.random.default_rng(3)
    W = tg.Variable(rng.normal(size=(4, 5)), dtype="float64")
    b = tg.Variable(rng.normal(size=5), dtype="float64")
    act = getattr(tg, activation)

    def f(x):
        return act(tg.matmul(x, W) + b)

    compiled = tg.Function(f)
    x = rng.normal(size=(3, 4))
    compiled(x)
    (node,) = base(compiled).graph.nodes
    assert [p.name for p, _, _ in node.op.steps] == ["matmul", "add", activation]
    assert f"fused {{matmul(%{base(compiled).graph.inputs[0].id}, " in forward_listing(compiled, x)
    np_act = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: 1 / (1 + np.exp(-z))}
    for xv in (x, rng.normal(size=(3, 4))):
        np.testing.assert_allclose(compiled(xv).value(), np_act[activation](xv @ W.value() + b.value()), rtol=1e-13)
        got, expected = [], []
        for fn, out in ((compiled, got), (f, expected)):
            xvar = tg.Variable(xv, dtype="float64")
            with tg.GradientTape() as tape:
                y = tg.reduce_sum(fn(xvar) * np.arange(5.0))
            out.extend(g1.value() for g1 in tape.gradient(y, [xvar, W, b]))
        assert_same(got, expected, rtol=1e-13)
        assert all(np.any(g1 != 0) for g1 in got)


# -- 3. edge cases -------------------------------------------------------------------------------
def test_integer_inputs():
    def f(i, j, k):
        return (i * 3 + j) - tg.maximum(i, j), tg.reduce_sum(i, axis=0), i / 2, tg.where(i > j, i, j * k), k * k - 1

    compiled = tg.Function(f)
    rng = np.random.default_rng(5)
    for _ in range(3):
        i, j = rng.integers(-5, 5, size=(2, 3)), rng.integers(-5, 5, size=3)
        k = np.int64(rng.integers(-3, 3))
        got, expected = compiled(i, j, k), f(tg.Variable(i), tg.Variable(j), tg.Variable(k))
        for a, e in zip(got, expected):
            assert a.value().dtype == e.value().dtype and a.value().dtype.kind in "if"
            np.testing.assert_array_equal(a.value(), e.value())
    assert compiled.trace_count == 1
    # an integer input next to a float one: the gradient w.r.t. the float input
    scale = tg.Function(lambda x, n: tg.reduce_sum(tg.sin(x) * n))
    x, n = np.array([0.2, -1.0, 3.0]), np.array([2, -3, 4])
    for _ in range(2):
        xv = tg.Variable(x, dtype="float64")
        with tg.GradientTape() as tape:
            y = scale(xv, n)
        np.testing.assert_allclose(tape.gradient(y, xv).value(), np.cos(x) * n, rtol=1e-15)
        assert float(y) == pytest.approx(float(np.sum(np.sin(x) * n)), rel=1e-15)


SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 2.5, -3.0, 1e-310])


def special_values(size, rng):
    x = np.concatenate([SPECIAL, rng.normal(size=size - len(SPECIAL)) * 3])
    rng.shuffle(x)
    return x


def nan_patterns_equal(got, expected, what):
    for pattern in (np.isnan, np.isposinf, np.isneginf, np.signbit):
        np.testing.assert_array_equal(pattern(got), pattern(expected), err_msg=f"{what}: {pattern.__name__}")
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0, err_msg=what)


def test_nan_and_inf_give_the_same_pattern_compiled_and_eager():
    def f(x):
        rows = tg.reshape(x, (-1, 5))
        return [
            tg.relu(x), tg.maximum(x, 0.5), tg.where(x > 0, x, 0.0), tg.where(x > 0, x * 2.0, x),
            tg.sigmoid(x), tg.softplus(x), tg.exp(x), tg.log(x), tg.sqrt(x), tg.tanh(x), 1.0 / x,
            tg.clip_by_value(x, -1.0, 1.0), x * 0.0, x - x, tg.square(x) * 1e10, tg.abs(x) + tg.sin(x),
            tg.reduce_max(rows, axis=-1), tg.reduce_sum(x), tg.logsumexp(rows, axis=0), tg.softmax(rows, axis=-1),
        ]

    compiled = tg.Function(f)
    rng = np.random.default_rng(6)
    with np.errstate(all="ignore"):
        for size in (10, 2050):  # small arrays, and arrays large enough for eager's select-by-product path
            for _ in range(2):
                x = special_values(size, rng)
                for k, (o, e) in enumerate(zip(compiled(x), f(tg.Variable(x)))):
                    nan_patterns_equal(o.value(), e.value(), f"size {size}, output {k}")
    assert compiled.trace_count == 2


@pytest.mark.parametrize("name, fn", [
    ("relu", tg.relu), ("where against 0", lambda x: tg.where(x > 0, x, 0.0)),
    ("where", lambda x: tg.where(x > 0, x * 2.0, tg.sin(x))), ("clip", lambda x: tg.clip_by_value(x, -1.0, 1.0)),
    ("maximum", lambda x: tg.sigmoid(tg.maximum(x, 0.5))), ("log", lambda x: tg.log(x) * 0.5),
    ("sqrt", tg.sqrt), ("reciprocal", lambda x: 1.0 / x), ("softplus", tg.softplus), ("tanh", tg.tanh),
    ("reduce_max", lambda x: tg.reduce_max(tg.reshape(x, (-1, 5)), axis=-1)),
    ("logsumexp", lambda x: tg.logsumexp(tg.reshape(x, (-1, 5)), axis=-1)),
    ("unselected inf", lambda x: tg.where(tg.abs(x) < 1.0, x, tg.exp(x * 1e3))),
])
def test_gradients_at_nan_and_inf_give_the_same_pattern_compiled_and_eager(name, fn):
    compiled = tg.Function(lambda x: tg.reduce_sum(fn(x)))
    rng = np.random.default_rng(8)
    with np.errstate(all="ignore"):
        for size in (10, 2050, 10):
            x = special_values(size, rng)
            grads = []
            for f in (compiled, lambda v: tg.reduce_sum(fn(v))):
                xv = tg.Variable(x, dtype="float64")
                with tg.GradientTape() as tape:
                    y = f(xv)
                grads.append((y.value(), tape.gradient(y, xv).value()))
            nan_patterns_equal(grads[0][0], grads[1][0], f"{name}, value")
            nan_patterns_equal(grads[0][1], grads[1][1], f"{name}, gradient")
    assert compiled.trace_count == 2


def test_a_chain_of_ten_thousand_ops_compiles_and_differentiates():
    n = 10_000

    def chain(x):
        h = x
        for k in range(n // 2):
            h = tg.sin(h) * (1.0 + 1e-4 * (k % 7))
        return h

    x = np.array([0.3, -1.1, 2.0])
    compiled = tg.Function(chain)
    for xv in (x, x * 0.5):
        var = tg.Variable(xv, dtype="float64")
        with tg.GradientTape() as tape:
            y = tg.reduce_sum(compiled(var))
        grad = tape.gradient(y, var).value()
        h, d = xv.copy(), np.ones_like(xv)
        for k in range(n // 2):
            d = d * np.cos(h) * (1.0 + 1e-4 * (k % 7))
            h = np.sin(h) * (1.0 + 1e-4 * (k % 7))
        np.testing.assert_allclose(float(y), h.sum(), rtol=1e-12)
        np.testing.assert_allclose(grad, d, rtol=1e-9)
    assert len(base(compiled).traced.nodes) == n
    assert compiled.trace_count == 1
    # (~1 s; it was ~4 s while fusion renamed a growing chain at every step. Speed is measured in
    # bench/compile_scale.py, not asserted here.)
    backward = base(base(compiled).backward).run
    assert backward.source is None and codegen.source_of(backward).count("def chunk") > 1  # emitted in chunks


def test_a_graph_emitted_in_chunks_hands_values_across_them():
    # values made early and used late cross chunk boundaries; intermediates of every kind
    n = 3 * codegen.CHUNK_LINES

    def program(x, w):
        first = tg.tanh(x @ w)
        h = first
        for k in range(n // 4):
            h = tg.sin(h) + (first if k % 50 == 0 else 0.1)
            h = tg.reshape(h, (-1,)) if k % 2 == 0 else tg.reshape(h, (2, 3))
        return tg.reduce_sum(h * first)

    rng = np.random.default_rng(5)
    sets = [[rng.normal(size=(2, 4)), rng.normal(size=(4, 3))] for _ in range(2)]
    compiled = assert_compiled_matches_eager(program, *sets, order=1)
    assert base(compiled).run.source is None
    assert "def chunk2" in codegen.source_of(base(compiled).run)


def test_what_a_compiled_function_keeps_per_op_stays_small():
    """A long chain with its backward graph: the Function keeps its traced graphs and code, not
    the trace's values nor a second copy of each graph (issue 8: 13 KB per op, now < 2 KB). The
    cost of one more op is measured: the difference between chains of 400 and 800 ops."""
    import gc
    import tracemalloc

    def kept_by(n):
        def chain(x, w, b):
            for i in range(n):
                x = x * w if i % 3 == 0 else (x + b if i % 3 == 1 else tg.tanh(x))
            return tg.reduce_sum(x)

        args = [np.linspace(-1, 1, 16), np.full(16, 1.01), np.full(16, 0.01)]
        f = tg.Function(chain)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        x = tg.Variable(args[0])
        with tg.GradientTape() as tape:
            y = f(x, *args[1:])
        tape.gradient(y, x)
        del tape, y, x
        gc.collect()
        return f, tracemalloc.get_traced_memory()[0] - before

    tracemalloc.start()
    try:
        small, kept_small = kept_by(400)
        large, kept_large = kept_by(800)
    finally:
        tracemalloc.stop()
    per_op = (kept_large - kept_small) / 400
    assert per_op < 2000, f"{per_op:.0f} bytes per op"


def test_an_unused_input_has_no_gradient():
    def f(x, unused, w):
        return tg.reduce_sum(tg.sin(x) * w)

    compiled = tg.Function(f)
    arrays = [np.array([0.2, 1.0]), np.array([3.0, 4.0, 5.0]), np.array([2.0, -1.0])]
    for _ in range(3):
        got, expected = value_and_grads(compiled, arrays), value_and_grads(f, arrays)
        assert got[1][1] is None and expected[1][1] is None
        assert_same([got[0]] + got[1], [expected[0]] + expected[1], rtol=1e-15)
        vs = variables(arrays)
        with tg.GradientTape() as tape:
            y = compiled(*vs)
        zeros = tape.gradient(y, vs, unconnected_gradients="zero")
        np.testing.assert_array_equal(zeros[1].value(), np.zeros(3))
        np.testing.assert_allclose(zeros[0].value(), np.cos(arrays[0]) * arrays[2], rtol=1e-15)


def test_an_input_used_only_through_a_comparison_has_no_gradient():
    def f(x, y):
        return tg.reduce_sum(tg.where(y > 0, x * x, -x))

    compiled = tg.Function(f)
    arrays = [np.array([0.5, -2.0, 3.0]), np.array([1.0, -1.0, 2.0])]
    for _ in range(3):
        got, expected = value_and_grads(compiled, arrays), value_and_grads(f, arrays)
        assert expected[1][1] is None and got[1][1] is None
        np.testing.assert_allclose(got[1][0], [1.0, -1.0, 6.0])


def test_a_variable_used_twice():
    w = tg.Variable(np.array([0.5, -1.5, 2.0]), dtype="float64")

    def f(x, y):
        return tg.reduce_sum(w * w * x + tg.sin(w) * y + x * y)

    compiled = tg.Function(f)
    x = tg.Variable(np.array([1.0, 2.0, -3.0]), dtype="float64")
    coefs = [np.array([1.0, -1.0, 0.5])] * 2
    for _ in range(3):
        # the same Variable passed for both arguments, and w read twice inside
        got, expected = [], []
        for fn, out in ((compiled, got), (f, expected)):
            with tg.GradientTape() as outer:
                with tg.GradientTape() as inner:
                    value = fn(x, x)
                gx, gw = inner.gradient(value, [x, w])
                probe = tg.reduce_sum(gx * coefs[0]) + tg.reduce_sum(gw * coefs[1])
            hx, hw = outer.gradient(probe, [x, w])
            out.extend([value.value(), gx.value(), gw.value(), hx.value(), hw.value()])
        assert_same(got, expected, rtol=1e-14)
        wv, xv = w.value(), x.value()
        np.testing.assert_allclose(got[1], wv * wv + np.sin(wv) + 2 * xv, rtol=1e-15)
        np.testing.assert_allclose(got[2], 2 * wv * xv + np.cos(wv) * xv, rtol=1e-15)
    assert compiled.trace_count == 1


# -- effects and aliasing: compiled results are values, as eager ones -------------------------------
def test_values_read_before_an_assign_keep_their_value():
    """A simplified identity (v * 1, v / 1, --v) must not turn a copy of a captured Variable into
    the Variable itself: the assign that follows changes the Variable in place."""

    def make():
        v = tg.Variable(np.array([1.0, 2.0, 3.0]), dtype="float64")

        def f(x):
            a, b, c = v * 1.0, v[1:] / 1.0, tg.neg(tg.neg(v))
            v.assign(v + x)
            return a, b, c, v * 2.0

        return v, f

    (_, eager), (v, f) = make(), make()
    compiled = tg.Function(f)
    results = []
    for k in range(3):
        x = np.array([10.0, 20.0, 30.0]) * (k + 1)
        got, expected = compiled(x), eager(x)
        assert_same([r.value() for r in got], [r.value() for r in expected], rtol=0, what=f"call {k}")
        results.append(got)
    np.testing.assert_array_equal(results[0][0].value(), [1.0, 2.0, 3.0])  # not changed by later calls
    assert not np.shares_memory(results[2][0].value(), v.value())


def test_results_never_share_the_callers_input_array():
    """x * 1, x / 1 and --x are new arrays in eager mode: compiled, the caller's array is not returned."""

    def f(x):
        return x * 1.0, x / 1.0, tg.neg(-x), tg.sin(x) * 1.0

    compiled = tg.Function(f)
    for k in range(3):
        x = np.array([0.5, -2.0, 3.0]) * (k + 1)
        got = [r.value() for r in compiled(x)]
        expected = [r.value() for r in f(tg.Variable(x))]
        assert_same(got, expected, rtol=0)
        assert not any(np.shares_memory(r, x) for r in got)
        x[:] = 0.0  # the caller changes its array: the results are values
        assert_same(got, expected, rtol=0)
    assert "sin" in op_names(base(compiled).graph) and op_names(base(compiled).graph).count("mul") == 1


def test_a_scalar_variable_is_read_again_after_an_assign():
    """A 0-d Variable holds an immutable NumPy scalar that assign replaces: reads after the
    assign see the new value."""

    def make():
        s = tg.Variable(1.0, dtype="float64")

        def f(x):
            before = s * 3.0
            s.assign(s + 1.0)
            return before, s * 2.0 + x

        return s, f

    (s_eager, eager), (s, f) = make(), make()
    compiled = tg.Function(f)
    for k in range(4):
        x = np.array([0.5, -0.5]) * k
        got, expected = compiled(x), eager(x)
        assert_same([r.value() for r in got], [r.value() for r in expected], rtol=0, what=f"call {k}")
        assert float(s) == float(s_eager) == 2.0 + k


def test_a_constant_result_is_a_fresh_array_at_every_call():
    def f(x):
        with tg.GradientTape() as tape:
            tape.watch(x)
            y = tg.reduce_sum(x * 3.0 * 2.0, axis=-1, keepdims=True)
        return tape.gradient(y, x)  # constant: 6 everywhere

    compiled = tg.Function(f)
    x = np.array([[0.5], [1.0]])
    first, second = compiled(x).value(), compiled(x).value()
    np.testing.assert_array_equal(second, [[6.0], [6.0]])
    assert not np.shares_memory(first, second)
    second[0] = 100.0  # the caller owns its result
    np.testing.assert_array_equal(compiled(x).value(), [[6.0], [6.0]])


@pytest.mark.parametrize("name, fn", [
    ("stop_gradient", lambda x: x * tg.stop_gradient(x)),
    ("cast", lambda x: x + tg.cast(tg.cast(x * 4.0, "int64"), "float64")),
    ("one_hot", lambda x: tg.one_hot(tg.cast(tg.abs(x) * 2.0, "int64"), 8, dtype="float64") * x[:, None]),
    ("bandpart", lambda x: tg.bandpart(tg.reshape(x, (2, 2)), 0, 0) + tg.reshape(x, (2, 2))),
])
def test_value_dependent_constants_are_computed_at_every_call(name, fn):
    """stop_gradient, cast, one_hot and bandpart of a traced value are constants for the tape, but
    not for the compiled graph: they are computed from each call's inputs."""
    compiled = tg.Function(fn)
    rng = np.random.default_rng(7)
    for _ in range(3):
        x = np.round(rng.normal(size=4), 2) + 0.001
        np.testing.assert_array_equal(compiled(x).value(), fn(tg.Variable(x)).value())
        got, expected = value_and_grads(lambda v: tg.reduce_sum(tg.sin(compiled(v))), [x]), value_and_grads(
            lambda v: tg.reduce_sum(tg.sin(fn(v))), [x])
        assert_same([got[0]] + got[1], [expected[0]] + expected[1], rtol=1e-15)
    assert compiled.trace_count == 1


def test_an_output_without_a_cotangent_adds_nothing_to_the_gradient():
    # One backward graph per set of used outputs: an unused output whose derivative is infinite
    # (log at 0) must not turn the gradient into NaN through 0 * inf, and an input that only the
    # unused output depends on gets None, as in eager mode.
    compiled = tg.Function(lambda x, y: (tg.sin(x), tg.log(x) + tg.cos(y)))

    def grads(fn, use):
        x = tg.Variable(np.array([0.0, 1.0]), dtype="float64")
        y = tg.Variable(np.array([2.0, 3.0]), dtype="float64")
        with tg.GradientTape() as tape:
            a, b = fn(x, y)
            loss = [tg.reduce_sum(a), tg.reduce_sum(b), tg.reduce_sum(a) + tg.reduce_sum(b)][use]
        return [None if g is None else g.value() for g in tape.gradient(loss, [x, y])]

    eager = lambda x, y: (tg.sin(x), tg.log(x) + tg.cos(y))  # noqa: E731
    with np.errstate(divide="ignore"):
        for use in (0, 1, 2, 0, 1):
            got, want = grads(compiled, use), grads(eager, use)
            assert (got[1] is None) == (want[1] is None)
            np.testing.assert_array_equal(got[0], want[0])
            if want[1] is not None:
                np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(grads(compiled, 0)[0], np.cos([0.0, 1.0]))
        assert grads(compiled, 0)[1] is None


def test_the_position_of_array_arguments_is_part_of_the_cache_key():
    f = tg.Function(lambda a, b: a * 2.0 if b is None else b * 3.0)
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(f(x, None).value(), [2.0, 4.0])
    np.testing.assert_array_equal(f(None, x).value(), [3.0, 6.0])
    assert f.trace_count == 2
