"""tapegrad.draw: a computation graph as Graphviz DOT, with the local derivative on each edge.

(The module is ``tapegrad.drawing``, so that ``tapegrad.draw`` stays the function.)

Seed 004's figure, for any recorded computation: every node shows its op and value, every
edge the partial derivative of the node's output with respect to that input, the others
held fixed (for ``d = a * c`` the edge ``a -> d`` shows the value of ``c``).

Local derivatives come from the ops' own VJP rules, run on the recorded values:

* an output of one element: the rule applied to a cotangent of one is the exact gradient
  of the output with respect to the input (a number, or an array of the input's shape);
* an elementwise op (its Jacobian is diagonal): the rule applied to ones is the
  derivative of each output element. Diagonality is checked, not assumed: the rule applied
  to a random cotangent ``r`` must equal ``r`` times the rule applied to ones;
* anything else (matmul, reductions, softmax, indexing): the Jacobian's shape, its values
  when it has at most six elements, and for common ops the rule as a formula of ``g``, the
  cotangent of the output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
import warnings
from typing import Any, Callable

import numpy as np

from .autodiff import state as _state
from .autodiff.broadcast import sum_like_p
from .autodiff.tape import GradientTape, flatten
from .autodiff.variable import Variable
from .errors import OpTypeError, OpValueError, TapegradError

FORMATS = ("svg", "png", "dot")
SMALL = 6  # arrays of at most this many elements are drawn with their values


class GraphvizWarning(UserWarning):
    """Graphviz's ``dot`` program is not installed: the drawing was not rendered."""


class GraphvizError(TapegradError, RuntimeError):
    """Graphviz's ``dot`` program failed or did not finish in time."""


def draw(
    target: GradientTape | Callable[..., Any],
    path: str | os.PathLike[str] | None = None,
    format: str = "svg",
    *,
    outputs: Variable | list[Variable] | tuple[Variable, ...] | None = None,
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    title: str | None = None,
    timeout: float = 30.0,
) -> str:
    """Draw a computation graph; return its Graphviz DOT source.

    ``target`` is either

    * a :class:`GradientTape`: the ops it recorded (use ``persistent=True``, or draw before
      ``gradient()``, which makes a non-persistent tape forget them). ``outputs=`` (a
      Variable or a list of them) keeps only the ops they depend on; or
    * a compiled :class:`~tapegrad.Function` (or a plain function, compiled for the
      drawing) together with its arguments ``args=(x, y)`` (a tuple; anything else is the one
      argument) and ``kwargs``: the graph it traced for them, before optimisation
      (``f.graph(...)`` lists the optimised one).
      Values are computed from ``args`` and the current values of the Variables the
      function reads; effects (``assign``, optimizer updates) are drawn, not run. A
      Function not yet traced for such arguments is called once to trace it, as
      ``f.graph(...)`` does, and that call does run its effects.

    Leaves and inputs are labelled with their Variable names; op results too when they
    are given one (``c.name = "c"``), and the edges between named nodes read ``∂d/∂a = 7``.

    With ``path``, the drawing is also written there: ``format="dot"`` writes the DOT
    source; ``"svg"`` and ``"png"`` run Graphviz's ``dot`` (at most ``timeout`` seconds).
    Without Graphviz a :class:`GraphvizWarning` says how to install it, nothing is
    written, and the DOT source is still returned.
    """
    if format not in FORMATS:
        raise OpValueError(f"draw: format must be one of {', '.join(map(repr, FORMATS))}, got {format!r}")
    if isinstance(target, GradientTape):
        if args is not None or kwargs is not None:
            raise OpTypeError("draw: args and kwargs are the arguments of a Function; a tape target takes none")
        picture = _tape_picture(target, outputs)
        default_title = "GradientTape"
    elif isinstance(target, Variable):
        raise OpTypeError(
            "draw: target is a Variable, which does not know the ops that computed it; pass the tape that "
            "recorded them and the Variable as outputs: draw(tape, outputs=y)")
    elif callable(target):
        if outputs is not None:
            raise OpTypeError("draw: outputs selects ops of a tape; a Function's graph is drawn whole")
        picture, name = _function_picture(target, () if args is None else args, kwargs or {})
        default_title = f"Function {name}"
    else:
        raise OpTypeError(
            f"draw: target must be a GradientTape or a Function (with args=...), got {type(target).__name__}")
    source = picture.dot(default_title if title is None else str(title))
    if path is not None:
        _write(source, os.fspath(path), format, timeout)
    return source


# -- the picture: nodes and edges, then DOT ---------------------------------------------------
_STYLES = {
    "leaf": 'shape=ellipse, style=filled, fillcolor="#dbeafe"',
    "op": 'shape=box, style="rounded,filled", fillcolor="#f3f4f6"',
    "const": "shape=plaintext",
    "effect": 'shape=box, style="dashed"',
}


class _Picture:
    def __init__(self) -> None:
        self.nodes: dict[Any, tuple[str, str, bool]] = {}  # key -> (label, kind, is an output)
        self.edges: list[tuple[Any, Any, str | None, bool]] = []  # (from, to, label, dashed)
        self._constants = 0

    def node(self, key: Any, label: str, kind: str, output: bool = False) -> None:
        self.nodes[key] = (label, kind, output)

    def constant(self, value: Any) -> Any:
        self._constants += 1
        key = ("const", self._constants)
        self.node(key, _value_text(value), "const")
        return key

    def edge(self, source: Any, target: Any, label: str | None, dashed: bool = False) -> None:
        self.edges.append((source, target, label, dashed))

    def dot(self, title: str) -> str:
        ids = {key: f"n{i}" for i, key in enumerate(self.nodes)}
        lines = [
            f"digraph {_quote(title)} {{",
            f"  graph [rankdir=BT, label={_quote(title)}, labelloc=t, fontname=Helvetica];",
            "  node [fontname=Helvetica, fontsize=11];",
            "  edge [fontname=Helvetica, fontsize=10];",
        ]
        for key, (label, kind, output) in self.nodes.items():
            extra = ", peripheries=2" if output else ""
            lines.append(f"  {ids[key]} [label={_quote(label)}, {_STYLES[kind]}{extra}];")
        for source, target, label, dashed in self.edges:
            attrs = [] if label is None else [f"label={_quote(label)}"]
            if dashed:
                attrs.append("style=dashed")
            lines.append(f"  {ids[source]} -> {ids[target]}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _op_node(picture: _Picture, key: Any, prim: Any, params: dict | None, value: Any, name: str | None,
             inputs: list[tuple[Any, Any, str | None, bool]], output: bool) -> None:
    """One op: its node, and an edge from each input (key, value, name, is a constant)
    labelled with the local derivative."""
    title = prim.name + _params_text(params) + (" [random]" if prim.impure else "")
    picture.node(key, f"{name} = {title}\n{_value_text(value)}" if name else f"{title}\n{_value_text(value)}",
                 "op", output)
    values = [v for _, v, _, _ in inputs]
    derivatives = local_derivatives(prim, values, params or {}, value)
    for (source, _, source_name, constant), derivative in zip(inputs, derivatives):
        label = derivative
        if label is not None and name and source_name:
            label = f"∂{name}/∂{source_name} = {label}"
        picture.edge(source, key, label, dashed=constant)


def _params_text(params: dict | None) -> str:
    shown = []
    for k, p in (params or {}).items():
        if k == "residuals":  # (a compiled call's saved random draws)
            continue
        text = _param_text(p)
        shown.append(f"{k}={text if len(text) <= 24 else text[:21] + '...'}")
    return f"({', '.join(shown)})" if shown else ""


def _param_text(p: Any) -> str:
    """A parameter as text that is the same in every run (no memory addresses)."""
    if isinstance(p, np.ndarray):
        return f"array{list(p.shape)}"
    if isinstance(p, np.dtype):
        return str(p)
    if callable(p) and hasattr(p, "__name__"):
        return p.__name__
    text = repr(p)
    return f"<{type(p).__name__}>" if " at 0x" in text else text


# -- a tape's recorded ops ---------------------------------------------------------------------
def _tape_picture(tape: GradientTape, outputs: Any) -> _Picture:
    nodes = list(tape._nodes)
    if not nodes:
        raise OpValueError(
            "draw: the tape has recorded no ops (a non-persistent tape forgets them when gradient() is called: "
            "draw it before, or use GradientTape(persistent=True))")
    if outputs is None:
        used = {id(a) for node in nodes for a in node[1] if a.__class__ is Variable}
        marked = {id(node[4]) for node in nodes if id(node[4]) not in used}
    else:
        wanted = flatten(outputs, "draw", "outputs")[0]
        produced = {id(node[4]) for node in nodes}
        for i, v in enumerate(wanted):
            if id(v) not in produced:
                label = f"{v.name!r}" if v.name else f"#{i}"
                raise OpValueError(
                    f"draw: output {label} (shape {v.shape}) was not computed by an op this tape recorded "
                    f"({len(nodes)} ops)")
        marked = {id(v) for v in wanted}
        needed = set(marked)
        kept = []
        for node in reversed(nodes):
            if id(node[4]) in needed:
                kept.append(node)
                needed.update(id(a) for a in node[1] if a.__class__ is Variable)
        nodes = kept[::-1]

    picture = _Picture()
    produced = {id(node[4]) for node in nodes}
    for prim, args, vals, params, out, _ in nodes:
        inputs = []
        for a, v in zip(args, vals):
            if a.__class__ is Variable:
                if id(a) not in produced and id(a) not in picture.nodes:
                    picture.node(id(a), _leaf_label(a.name, "leaf", v), "leaf")
                inputs.append((id(a), v, a.name, False))
            else:
                inputs.append((picture.constant(v), v, None, True))
        _op_node(picture, id(out), prim, params, out._value, out.name, inputs, id(out) in marked)
    return picture


def _leaf_label(name: str | None, kind: str, value: Any) -> str:
    return f"{name or kind}\n{_value_text(value)}"


# -- a compiled Function's traced graph -----------------------------------------------------------
def _function_picture(fn: Callable[..., Any], args: Any, kwargs: dict) -> tuple[_Picture, str]:
    from .compiler import Function

    function = fn if isinstance(fn, Function) else Function(fn)
    if not isinstance(args, tuple):  # one argument
        args = (args,)
    with _state.paused():  # drawing is not part of whatever a tape or tracer records
        graph, arrays = _traced_graph(function, tuple(args), kwargs)

    picture = _Picture()
    values: dict[int, Any] = {}
    outputs = {v.id for v in graph.outputs}
    for v in graph.inputs:
        array = arrays[v.payload]
        values[v.id] = array._value if isinstance(array, Variable) else array
        name = array.name if isinstance(array, Variable) else None
        picture.node(v.id, _leaf_label(name, f"input {v.payload}", values[v.id]), "leaf", v.id in outputs)
    for v in graph.captures:
        values[v.id] = v.payload._value
        picture.node(v.id, _leaf_label(v.payload.name, "capture", values[v.id]), "leaf", v.id in outputs)

    names = {v.id: arrays[v.payload].name for v in graph.inputs if isinstance(arrays[v.payload], Variable)}
    names.update({v.id: v.payload.name for v in graph.captures})

    def source(v: Any) -> tuple[Any, Any, str | None, bool]:
        if v.kind == "const":
            return picture.constant(v.payload), v.payload, None, True
        return v.id, values[v.id], names.get(v.id), False

    effects = 0
    with np.errstate(all="ignore"):
        for node in graph.nodes:
            inputs = [source(v) for v in node.inputs]
            if node.effect is not None:  # (drawn, never run)
                effects += 1
                key = ("effect", effects)
                picture.node(key, node.effect.describe, "effect")
                for input_key, _, _, _ in inputs:
                    picture.edge(input_key, key, None, dashed=True)
                continue
            value = node.op.impl(*(v for _, v, _, _ in inputs), **node.params)
            values[node.output.id] = value
            _op_node(picture, node.output.id, node.op, node.params, value, None, inputs,
                     node.output.id in outputs)
    return picture, function.name


def _traced_graph(function: Any, args: tuple, kwargs: dict) -> tuple[Any, list]:
    """The graph ``function`` traced for these arguments (tracing it now if needed), and the
    arguments' array leaves, in the order of the graph's inputs."""
    key, arrays, shapes = function._key(args, kwargs)
    entry = function._cache.get(key)
    if entry is None or shapes not in entry.variants:
        function(*args, **kwargs)
        entry = function._cache[key]
    return entry.variants[shapes].traced, arrays


# -- local derivatives -----------------------------------------------------------------------------
_RULE_FAILURES = (ArithmeticError, LookupError, TypeError, ValueError, AttributeError, NotImplementedError)

# The VJP rule as a formula of g, the output's cotangent, for ops whose Jacobian is not drawn.
_FORMULAS: dict[str, tuple[str, ...]] = {
    "matmul": ("g @ yᵀ", "xᵀ @ g"),
    "reduce_sum": ("g broadcast to x",),
    "reduce_mean": ("g / n broadcast to x",),
    "reshape": ("g reshaped as x",),
    "transpose": ("g transposed back",),
    "broadcast_to": ("g summed to x's shape",),
    "softmax": ("out ⊙ (g - Σ g ⊙ out)",),
    "log_softmax": ("g - exp(out) Σ g",),
    "getitem": ("g scattered into x",),
    "gather": ("g scattered into x",),
    "expand_dims": ("g reshaped as x",),
    "squeeze": ("g reshaped as x",),
}


def local_derivatives(prim: Any, inputs: list, params: dict, out: Any) -> list[str | None]:
    """The label of each input's edge: the local derivative of ``out`` with respect to it
    (None for an input that has none: an integer, a bool, a non-differentiable op)."""
    floats = [_is_float(v) for v in inputs]
    labels: list[str | None] = [None] * len(inputs)
    if not (_is_float(out) and any(floats)) or not prim.differentiable:
        return labels
    shape = np.shape(out)
    needs = tuple(floats)
    with np.errstate(all="ignore"), _state.paused():
        try:
            at_ones = _cotangents(prim, _ones(out), out, inputs, params, needs)
            if np.size(out) == 1:
                for i, d in enumerate(at_ones):
                    if floats[i] and d is not None:
                        labels[i] = _value_text(sum_like_p(d, inputs[i]))
                return labels
            probe = np.random.default_rng(0).uniform(0.5, 1.5, shape).astype(np.asarray(out).dtype)
            at_probe = _cotangents(prim, probe, out, inputs, params, needs)
            for i, (d, dp) in enumerate(zip(at_ones, at_probe)):
                if not floats[i] or d is None:
                    continue
                if _is_diagonal(d, dp, probe, shape):
                    labels[i] = "elementwise " + _value_text(np.broadcast_to(d, shape))
                else:
                    labels[i] = _jacobian_text(prim, i, out, inputs, params, needs)
        except _RULE_FAILURES as exc:
            return [f"(no local derivative: {type(exc).__name__})" if f else None for f in floats]
    return labels


def _cotangents(prim: Any, g: Any, out: Any, inputs: list, params: dict, needs: tuple) -> list:
    """Each input's cotangent for the output cotangent ``g`` (None where there is none)."""
    if prim.vjp_rules is not None:
        rules = prim.vjp_rules
        result = [rules[i](g, out, *inputs, **params) if need and i < len(rules) and rules[i] is not None
                  else None for i, need in enumerate(needs)]
    elif prim.vjp_joint is not None:
        result = list(prim.vjp_joint(g, out, needs, list(inputs), params))
    else:
        return [None] * len(inputs)
    return [d._value if isinstance(d, Variable) else d for d in result]


def _is_diagonal(d: Any, d_probe: Any, probe: np.ndarray, shape: tuple) -> bool:
    """Whether the rule is ``g -> g * d``: a linear map that sends one random ``g`` there
    is that map (but for a set of ``g`` of measure zero)."""
    if d_probe is None or np.shape(d_probe) != shape:
        return False
    try:
        expected = probe * np.broadcast_to(d, shape)
    except ValueError:
        return False
    scale = float(np.max(np.abs(np.nan_to_num(expected, posinf=0, neginf=0)), initial=0.0))
    return bool(np.allclose(d_probe, expected, rtol=1e-4, atol=1e-6 * max(scale, 1e-30), equal_nan=True))


def _jacobian_text(prim: Any, i: int, out: Any, inputs: list, params: dict, needs: tuple) -> str:
    out_shape, in_shape = np.shape(out), np.shape(inputs[i])
    text = f"Jacobian {out_shape}×{in_shape}"
    if np.size(out) * int(np.prod(in_shape)) <= SMALL:
        rows = []
        for k in range(np.size(out)):
            g = np.zeros(out_shape, np.asarray(out).dtype)
            g.flat[k] = 1
            rows.append(np.asarray(sum_like_p(_cotangents(prim, g, out, inputs, params, needs)[i], inputs[i])))
        text += "\n" + _nested(np.stack(rows).reshape(out_shape + in_shape))
    formulas = _FORMULAS.get(prim.name, ())
    if i < len(formulas) and not params.get("transpose_a") and not params.get("transpose_b"):
        text += f"\nVJP g ↦ {formulas[i]}"
    return text


def _is_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    return isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind == "f"


def _ones(value: Any) -> Any:
    value = np.asarray(value)
    return value.dtype.type(1) if value.ndim == 0 else np.ones(value.shape, value.dtype)


# -- values as text ----------------------------------------------------------------------------------
def _value_text(value: Any) -> str:
    """A number as the seed prints it (28, not 28.0); an array as its shape and, when it
    has at most six elements or they are all equal, its values."""
    if isinstance(value, Variable):
        value = value._value
    if isinstance(value, (tuple, list)) and not isinstance(value, np.ndarray):
        return f"({len(value)} outputs)"
    array = np.asarray(value)
    if array.ndim == 0:
        return _number(array[()])
    if array.size <= SMALL:
        return f"{array.shape}\n{_nested(array)}"
    if array.size and np.all(array == array.flat[0]):
        return f"{array.shape}, all {_number(array.flat[0])}"
    return f"{array.shape}"


def _nested(array: np.ndarray) -> str:
    if array.ndim == 0:
        return _number(array[()])
    return "[" + ", ".join(_nested(row) for row in array) + "]"


def _number(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.6g}"


# -- writing ------------------------------------------------------------------------------------------
def _write(source: str, path: str, format: str, timeout: float) -> None:
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix in FORMATS and suffix != format:
        raise OpValueError(f"draw: path {path!r} ends in .{suffix} but format is {format!r}: pass format={suffix!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OpValueError(f"draw: the folder of path {path!r} does not exist ({folder})")
    if format == "dot":
        _replace(path, folder, lambda temporary: _write_text(temporary, source))
        return
    dot = shutil.which("dot")
    if dot is None:
        warnings.warn(
            f"draw: Graphviz's dot program was not found on PATH, so {path!r} was not written. Install "
            f"Graphviz (e.g. `apt install graphviz`, `brew install graphviz` or `conda install graphviz`) "
            f"to get {format.upper()}; draw() returned the DOT source, which format='dot' writes as it is",
            GraphvizWarning, stacklevel=3)
        return
    _replace(path, folder, lambda temporary: _render(dot, source, format, temporary, timeout))


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


def _render(dot: str, source: str, format: str, path: str, timeout: float) -> None:
    try:
        result = subprocess.run([dot, f"-T{format}", "-o", path], input=source.encode("utf-8"),
                                capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"draw: Graphviz's dot did not finish within timeout={timeout} s") from None
    except OSError as exc:
        raise GraphvizError(f"draw: Graphviz's dot ({dot}) could not be run: {exc}") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise GraphvizError(f"draw: Graphviz's dot -T{format} failed (exit status {result.returncode}): {message}")


def _replace(path: str, folder: str, write: Callable[[str], None]) -> None:
    """Write into a temporary file next to ``path``, then rename it: a failure never leaves
    a half-written file, nor destroys one written before."""
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


__all__ = ["GraphvizError", "GraphvizWarning", "draw"]
