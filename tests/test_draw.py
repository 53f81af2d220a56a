"""tapegrad.draw: seed 004's computation graph, with the local derivative on each edge."""

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.drawing import GraphvizError, GraphvizWarning, local_derivatives

ROOT = Path(__file__).resolve().parent.parent


def unquote(text):
    return text.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def parse(dot):
    """(node id -> label, [(from label, to label, edge label or None, attributes)], set of output labels)."""
    nodes, outputs = {}, set()
    for node_id, label, attrs in re.findall(r'^  (n\d+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$', dot, flags=re.M):
        nodes[node_id] = unquote(label)
        if "peripheries=2" in attrs:
            outputs.add(unquote(label))
    edges = []
    for a, b, attrs in re.findall(r"^  (n\d+) -> (n\d+)(?: \[(.*)\])?;$", dot, flags=re.M):
        label = re.search(r'label="((?:[^"\\]|\\.)*)"', attrs)
        edges.append((nodes[a], nodes[b], unquote(label.group(1)) if label else None, attrs))
    return nodes, edges, outputs


def seed_graph(named=True):
    a = tg.Variable(4.0, dtype="float64", name="a")
    b = tg.Variable(3.0, dtype="float64", name="b")
    with tg.GradientTape(persistent=True) as tape:
        c = a + b
        d = a * c
    if named:
        c.name, d.name = "c", "d"
    return tape, a, b, c, d


# -- seed 004's figure ----------------------------------------------------------------------------
def test_seed_004_graph_shows_values_and_the_seeds_local_derivatives():
    tape, *_ = seed_graph()
    nodes, edges, outputs = parse(tg.draw(tape))
    assert sorted(nodes.values()) == ["a\n4", "b\n3", "c = add\n7", "d = mul\n28"]
    assert outputs == {"d = mul\n28"}
    # the seed: dc/da = dc/db = 1, dd/da = c = 7, dd/dc = a = 4
    assert sorted((x, y, label) for x, y, label, _ in edges) == [
        ("a\n4", "c = add\n7", "∂c/∂a = 1"),
        ("a\n4", "d = mul\n28", "∂d/∂a = 7"),
        ("b\n3", "c = add\n7", "∂c/∂b = 1"),
        ("c = add\n7", "d = mul\n28", "∂d/∂c = 4"),
    ]


def test_unnamed_results_show_op_value_and_derivative_alone():
    tape, *_ = seed_graph(named=False)
    nodes, edges, _ = parse(tg.draw(tape))
    assert sorted(nodes.values()) == ["a\n4", "add\n7", "b\n3", "mul\n28"]
    assert sorted((x, label) for x, _, label, _ in edges) == [("a\n4", "1"), ("a\n4", "7"), ("add\n7", "4"),
                                                              ("b\n3", "1")]


def test_outputs_keep_only_the_ops_they_depend_on():
    a = tg.Variable(2.0, dtype="float64", name="a")
    with tg.GradientTape(persistent=True) as tape:
        c = a * 3.0
        c.name = "c"
        e = tg.exp(a)
    nodes, edges, outputs = parse(tg.draw(tape, outputs=c))
    assert sorted(nodes.values()) == ["3", "a\n2", "c = mul\n6"]
    assert outputs == {"c = mul\n6"}
    # a constant operand is drawn dashed, with the derivative with respect to it
    assert [(x, label, "dashed" in attrs) for x, _, label, attrs in edges] == [("a\n2", "∂c/∂a = 3", False),
                                                                                ("3", "2", True)]
    _, _, outputs = parse(tg.draw(tape))  # without outputs: every result no op used
    assert outputs == {"c = mul\n6", f"exp\n{float(e):.6g}"}


@pytest.mark.parametrize("name, make, inputs", [
    ("div", lambda x, y: x / y, (1.7, -0.6)),
    ("pow", lambda x, y: x ** y, (1.7, 2.3)),
    ("sin", lambda x: tg.sin(x), (0.7,)),
    ("log", lambda x: tg.log(x), (0.7,)),
    ("tanh", lambda x: tg.tanh(x), (0.7,)),
    ("maximum", lambda x, y: tg.maximum(x, y), (0.7, 0.2)),
])
def test_scalar_local_derivatives_match_central_differences(name, make, inputs):
    xs = [tg.Variable(v, dtype="float64") for v in inputs]
    with tg.GradientTape(persistent=True) as tape:
        make(*xs)
    (prim, _, vals, params, out, _), = tape._nodes
    labels = local_derivatives(prim, list(vals), params or {}, out._value)
    h = 1e-6
    for i, label in enumerate(labels):
        up, down = list(vals), list(vals)
        up[i], down[i] = vals[i] + h, vals[i] - h
        numeric = (prim.impl(*up, **(params or {})) - prim.impl(*down, **(params or {}))) / (2 * h)
        assert float(label) == pytest.approx(numeric, rel=1e-5), (name, i)


# -- a Function's graph ---------------------------------------------------------------------------
def seed_function(a, b, c):
    f = tg.sin(a * b) + tg.exp(c - (a / b))
    return tg.log(f * f) * c


def test_function_graph_draws_seed_004s_sin_exp_log_function():
    a, b, c = (tg.Variable(v, dtype="float64", name=n) for v, n in ((43.0, "a"), (3.0, "b"), (2.0, "c")))
    f = tg.Function(seed_function)
    nodes, edges, outputs = parse(tg.draw(f, args=(a, b, c)))
    assert {"a\n43", "b\n3", "c\n2"} <= set(nodes.values())
    ops = sorted(label.split("\n")[0] for label in nodes.values() if label.split("\n")[0] not in "abc")
    assert ops == ["add", "div", "exp", "log", "mul", "mul", "mul", "sin", "sub"]
    f_value = np.sin(43.0 * 3.0) + np.exp(2.0 - 43.0 / 3.0)
    y = np.log(f_value * f_value) * 2.0
    assert outputs == {f"mul\n{y:.6g}"}
    by_target = {}
    for x, target, label, _ in edges:
        by_target.setdefault(target.split("\n")[0], []).append((x.split("\n")[0], float(label)))
    assert by_target["sin"] == [("mul", pytest.approx(np.cos(129.0), rel=1e-5))]
    assert by_target["log"] == [("mul", pytest.approx(1 / (f_value * f_value), rel=1e-5))]
    assert sorted(by_target["div"]) == [("a", pytest.approx(1 / 3.0, rel=1e-5)),
                                        ("b", pytest.approx(-43.0 / 9.0, rel=1e-5))]
    assert f.trace_count == 1
    tg.draw(f, args=(a, b, c))  # drawn again from the same trace
    assert f.trace_count == 1


def test_a_plain_function_is_compiled_for_the_drawing_and_nothing_is_recorded():
    x = tg.Variable(np.array([1.0, 2.0]), name="x")
    with tg.GradientTape() as tape:
        nodes, edges, outputs = parse(tg.draw(lambda v: tg.square(v), args=x))
    assert tape._nodes == []
    assert set(nodes.values()) == {"x\n(2,)\n[1, 2]", "square\n(2,)\n[1, 4]"}
    assert [label for *_, label, _ in edges] == ["elementwise (2,)\n[2, 4]"]


def test_a_functions_effects_are_drawn_not_run_and_captures_show_their_current_values():
    w = tg.Variable(np.array([1.0, 2.0]), dtype="float64", name="w")

    @tg.Function
    def step(x):
        y = w * x
        w.assign(y)
        return tg.reduce_sum(y)

    x = tg.Variable(np.array([3.0, 4.0]), dtype="float64", name="x")
    step(x)  # w = [3, 8]
    nodes, edges, outputs = parse(tg.draw(step, args=(x,)))
    assert np.array_equal(w.value(), [3.0, 8.0])  # drawing ran no assignment
    assert {"w\n(2,)\n[3, 8]", "mul\n(2,)\n[9, 32]", "assign w :="} <= set(nodes.values())
    assert outputs == {"reduce_sum(axis=None, keepdims=False)\n41"}
    into_effect = sorted((x.split("\n")[0], label, "dashed" in attrs) for x, y, label, attrs in edges
                         if y == "assign w :=")
    assert into_effect == [("mul", None, True), ("w", None, True)]


# -- arrays --------------------------------------------------------------------------------------------
def test_arrays_show_shapes_values_when_small_and_jacobians_where_not_elementwise():
    x = tg.Variable(np.arange(6.0).reshape(2, 3), dtype="float64", name="x")
    w = tg.Variable(np.full((3, 2), 0.5), dtype="float64", name="w")
    s = tg.Variable(2.0, dtype="float64", name="s")
    big = tg.Variable(np.ones((10, 10)), dtype="float64", name="big")
    with tg.GradientTape(persistent=True) as tape:
        y = x @ w
        m = s * x[0]
        r = tg.reduce_sum(m)
        z = big * 3.0
    for v, name in ((y, "y"), (m, "m"), (r, "r"), (z, "z")):
        v.name = name
    nodes, edges, _ = parse(tg.draw(tape))
    labels = set(nodes.values())
    assert "x\n(2, 3)\n[[0, 1, 2], [3, 4, 5]]" in labels
    assert "y = matmul\n(2, 2)\n[[1.5, 1.5], [6, 6]]" in labels
    assert "big\n(10, 10), all 1" in labels
    derivative = {(a.split("\n")[0].split(" = ")[0], b.split("\n")[0].split(" = ")[0]): label
                  for a, b, label, _ in edges}
    assert derivative[("x", "y")] == "∂y/∂x = Jacobian (2, 2)×(2, 3)\nVJP g ↦ g @ yᵀ"
    assert derivative[("w", "y")] == "∂y/∂w = Jacobian (2, 2)×(3, 2)\nVJP g ↦ xᵀ @ g"
    # a scalar times a vector: each output element's derivative with respect to s is x[0]
    assert derivative[("s", "m")] == "∂m/∂s = elementwise (3,)\n[0, 1, 2]"
    # one output element: the gradient, in the input's shape
    assert derivative[("m", "r")] == "∂r/∂m = (3,)\n[1, 1, 1]"
    assert derivative[("big", "z")] == "∂z/∂big = elementwise (10, 10), all 3"


def test_softmax_is_not_taken_for_elementwise_and_small_jacobians_show_their_values():
    x = tg.Variable(np.array([0.5, -1.0]), dtype="float64", name="x")
    with tg.GradientTape(persistent=True) as tape:
        s = tg.softmax(x)
    (prim, _, vals, params, out, _), = tape._nodes
    label = local_derivatives(prim, list(vals), params or {}, out._value)[0]
    p = np.exp([0.5, -1.0]) / np.exp([0.5, -1.0]).sum()
    jacobian = np.diag(p) - np.outer(p, p)
    head, values, formula = label.split("\n")
    assert head == "Jacobian (2,)×(2,)"
    assert np.allclose(np.array(eval(values)), jacobian, rtol=1e-5)  # noqa: S307 - our own number list
    assert formula.startswith("VJP g ↦")
    assert s.shape == (2,)


def test_compiled_calls_and_custom_gradients_on_a_tape_take_their_own_rules():
    @tg.custom_gradient
    def cube(x):
        return x * x * x, lambda dy: dy * 3 * x * x

    compiled_sin = tg.Function(lambda v: tg.sin(v), name="compiled_sin")
    x = tg.Variable(2.0, dtype="float64", name="x")
    v = tg.Variable(np.array([0.5, 1.0]), dtype="float64", name="v")
    with tg.GradientTape(persistent=True) as tape:
        y = cube(x)
        s = compiled_sin(v)
    y.name, s.name = "y", "s"
    dot = tg.draw(tape)
    assert " at 0x" not in dot  # parameters are drawn the same in every run
    _, edges, outputs = parse(dot)
    labels = {label for *_, label, _ in edges}
    assert "∂y/∂x = 12" in labels  # the custom rule: 3 x^2
    cos = np.cos([0.5, 1.0])
    assert f"∂s/∂v = elementwise (2,)\n[{cos[0]:.6g}, {cos[1]:.6g}]" in labels  # the compiled backward pass
    assert {o.split("\n")[0] for o in outputs} == {"y = custom(fn=cube, backward=<lambda>, name='cube')",
                                                    "s = call:compiled_sin"}


# -- writing files ---------------------------------------------------------------------------------
def test_format_dot_writes_the_returned_source(tmp_path):
    tape, *_ = seed_graph()
    path = tmp_path / "seed.dot"
    source = tg.draw(tape, path, format="dot")
    assert path.read_text(encoding="utf-8") == source
    assert os.listdir(tmp_path) == ["seed.dot"]


def test_without_graphviz_a_warning_says_how_to_install_it_and_the_source_is_returned(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    tape, *_ = seed_graph()
    with pytest.warns(GraphvizWarning, match=r"apt install graphviz.*returned the DOT source"):
        source = tg.draw(tape, tmp_path / "seed.svg")
    assert "∂d/∂a = 7" in source
    assert sorted(os.listdir(tmp_path)) == ["empty"]


def fake_dot(folder, body):
    """A `dot` program to put on PATH: a Python script (Graphviz itself is not needed)."""
    folder.mkdir()
    script = folder / "dot"
    script.write_text(f"#!{sys.executable}\nimport sys, time\nfrom pathlib import Path\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


@pytest.mark.skipif(sys.platform == "win32", reason="the fake dot program is a script with a #! line")
def test_svg_and_png_run_dot_with_the_source_on_stdin(tmp_path, monkeypatch):
    # records its arguments, copies stdin to the -o file
    bin_dir = fake_dot(tmp_path / "bin", "Path(sys.argv[0]).with_name('args').write_text(' '.join(sys.argv[1:]))\n"
                                         "Path(sys.argv[3]).write_bytes(sys.stdin.buffer.read())\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    tape, *_ = seed_graph()
    for format in ("svg", "png"):
        source = tg.draw(tape, tmp_path / f"seed.{format}", format=format)
        assert (tmp_path / f"seed.{format}").read_text(encoding="utf-8") == source
        assert (bin_dir / "args").read_text().startswith(f"-T{format} -o ")
    assert sorted(os.listdir(tmp_path)) == ["bin", "seed.png", "seed.svg"]


@pytest.mark.skipif(sys.platform == "win32", reason="the fake dot program is a script with a #! line")
def test_a_failing_or_hanging_dot_raises_and_keeps_the_previous_file(tmp_path, monkeypatch):
    tape, *_ = seed_graph()
    previous = tmp_path / "seed.svg"
    previous.write_text("earlier drawing")
    monkeypatch.setenv("PATH", str(fake_dot(tmp_path / "failing", "sys.exit('syntax error in line 3')\n")))
    with pytest.raises(GraphvizError, match=r"dot -Tsvg failed \(exit status 1\): syntax error in line 3"):
        tg.draw(tape, previous)
    monkeypatch.setenv("PATH", str(fake_dot(tmp_path / "hanging", "time.sleep(30)\n")))
    with pytest.raises(GraphvizError, match="did not finish within timeout=0.2 s"):
        tg.draw(tape, previous, timeout=0.2)
    assert previous.read_text() == "earlier drawing"
    assert sorted(os.listdir(tmp_path)) == ["failing", "hanging", "seed.svg"]


def test_the_installed_graphviz_renders_the_dot_source_or_its_absence_is_explained(tmp_path):
    # With Graphviz installed (apt install graphviz), the real dot renders our DOT text; without
    # it, the documented warning comes and nothing is written (the CI machine has no Graphviz).
    tape, *_ = seed_graph()
    path = tmp_path / "seed.svg"
    if shutil.which("dot"):
        tg.draw(tape, path)
        svg = path.read_text(encoding="utf-8")
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "∂d/∂a = 7" in svg and "28" in svg
    else:
        with pytest.warns(UserWarning, match="Graphviz"):
            source = tg.draw(tape, path)
        assert "digraph" in source and not path.exists()


# -- errors --------------------------------------------------------------------------------------------
def test_bad_targets_and_arguments_are_explained(tmp_path):
    tape, a, b, c, d = seed_graph()
    with pytest.raises(tg.OpTypeError, match=r"draw: target is a Variable.*draw\(tape, outputs=y\)"):
        tg.draw(d)
    with pytest.raises(tg.OpTypeError, match="draw: target must be a GradientTape or a Function.*got int"):
        tg.draw(3)
    with pytest.raises(tg.OpValueError, match="draw: format must be one of 'svg', 'png', 'dot', got 'jpg'"):
        tg.draw(tape, format="jpg")
    with pytest.raises(tg.OpValueError, match=r"path '.*seed.png' ends in .png but format is 'svg': pass format='png'"):
        tg.draw(tape, str(tmp_path / "seed.png"))
    with pytest.raises(tg.OpValueError, match="the folder of path .* does not exist"):
        tg.draw(tape, tmp_path / "missing" / "seed.dot", format="dot")
    with pytest.raises(tg.OpTypeError, match="draw: args and kwargs are the arguments of a Function"):
        tg.draw(tape, args=(a,))
    with pytest.raises(tg.OpTypeError, match="draw: outputs selects ops of a tape"):
        tg.draw(tg.Function(seed_function), args=(a, b, c), outputs=d)
    other = tg.Variable(np.zeros((2, 3)), name="other")
    with pytest.raises(tg.OpValueError, match=r"draw: output 'other' \(shape \(2, 3\)\) was not computed by an op "
                                              r"this tape recorded \(2 ops\)"):
        tg.draw(tape, outputs=[d, other])
    with tg.GradientTape() as used:
        e = a * b
    used.gradient(e, a)
    with pytest.raises(tg.OpValueError, match=r"the tape has recorded no ops.*persistent=True"):
        tg.draw(used)
    assert os.listdir(tmp_path) == []


def test_the_builder_and_the_package_export_draw():
    g = tg.NeuralNetworks().gradient()
    assert g.draw is tg.draw
    assert "draw" in tg.__all__ and "draw" in dir(tg)


def test_example_draws_seed_004s_graphs(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "draw_graph.py"), str(tmp_path / "out")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "d.value = 28" in result.stdout
    assert f"wrote {tmp_path / 'out' / 'seed004_d.dot'}" in result.stdout
    _, edges, _ = parse((tmp_path / "out" / "seed004_d.dot").read_text(encoding="utf-8"))
    assert sorted(label for *_, label, _ in edges) == ["∂c/∂a = 1", "∂c/∂b = 1", "∂d/∂a = 7", "∂d/∂c = 4"]
    nodes, _, _ = parse((tmp_path / "out" / "seed004_sin_exp_log.dot").read_text(encoding="utf-8"))
    assert {"sin", "exp", "log"} <= {label.split("\n")[0] for label in nodes.values()}
