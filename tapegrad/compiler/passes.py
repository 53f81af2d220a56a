"""Graph optimisation passes.

``optimize`` runs, in order: algebraic simplification and constant folding (one
forward sweep, with value substitution), common-subexpression elimination,
dead-code elimination, fusion of elementwise chains (and of a matmul with the
bias add and activation that follow it) into single in-place kernels, and
horizontal batching of many identical independent chains into one chain over a
stacked buffer. Buffer reuse and in-place execution are planned by the code
generator.

Passes never move or remove effects (assignments, optimizer updates), and CSE does
not merge across an effect, which may have changed a captured Variable in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .ir import ACC, ROW, VARYING, Fused, Graph, Node, Stacked, Value
from .kernels import ELEMENTWISE, FUSION_HEADS, KERNELS


def optimize(graph: Graph) -> Graph:
    graph = simplify(graph.copy())
    graph = cse(graph)
    graph = dce(graph)
    graph = fuse(graph)
    graph = batch(graph)
    return graph


# -- helpers -------------------------------------------------------------------------------
def _const_value(v: Value) -> Any:
    return v.payload if v.kind == "const" else None


def _is_const_scalar(v: Value, number: float) -> bool:
    """A constant whose every element equals ``number`` (e.g. the ones that seed a gradient)."""
    if v.kind != "const":
        return False
    return _uniform_value(v.payload) == number


def _uniform_value(payload: Any) -> Any:
    """The value every element of a constant has, or None (remembered per constant object:
    a backward graph reuses a few constants in thousands of nodes)."""
    key = id(payload)
    hit = _uniform_cache.get(key)
    if hit is not None and hit[0] is payload:
        return hit[1]
    try:
        c = np.asarray(payload)
        value = c.flat[0].item() if c.size and c.size <= 1 << 16 and bool(np.all(c == c.flat[0])) else None
    except (TypeError, ValueError):
        value = None
    if np.size(payload) <= 64:  # (the cache keeps what it remembers alive: only small constants)
        if len(_uniform_cache) > 4096:
            _uniform_cache.clear()
        _uniform_cache[key] = (payload, value)
    return value


_uniform_cache: dict[int, tuple[Any, Any]] = {}


def _is_const_zero(v: Value, negative: bool, result: Value) -> bool:
    """A constant of zeros that all have the given sign (any zeros when the result is not a float)."""
    if not _is_const_scalar(v, 0):
        return False
    return result.dtype.kind != "f" or bool(np.all(np.signbit(np.asarray(v.payload)) == negative))


def _same_type(a: Value, b: Value) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


def _rebuild(graph: Graph, nodes: list[Node], subst: dict[int, Value]) -> Graph:
    def s(v: Value) -> Value:
        while v.id in subst:
            v = subst[v.id]
        return v

    for node in nodes:
        node.inputs = [s(i) for i in node.inputs]
    return Graph(graph.inputs, graph.captures, nodes, [s(v) for v in graph.outputs])


# -- simplification and constant folding ------------------------------------------------------
# Arithmetic identities (x * 1, x / 1, x ** 1, --x, ...) give x itself where the eager op computes
# a new array. That is the same value unless x's memory can change under it: the memory of an
# input or of a captured Variable (an assign or an optimizer update writes it in place, in this
# call or a later one; the caller owns its input arrays), or a view of one. Then the op is kept.
_COPYING = frozenset({"mul", "add", "sub", "div", "pow", "neg"})


def simplify(graph: Graph) -> Graph:
    subst: dict[int, Value] = {}
    nodes: list[Node] = []
    external: set[int] = set()  # node values that may share the memory of an input or a capture

    def s(v: Value) -> Value:
        while v.id in subst:
            v = subst[v.id]
        return v

    def shares_external(v: Value) -> bool:
        return v.kind in ("input", "capture") or v.id in external

    def keep(node: Node) -> None:
        nodes.append(node)
        # views and ops called through their NumPy forward may return (a view of) an input
        if node.op.name not in KERNELS and any(shares_external(i) for i in node.inputs):
            external.add(node.output.id)

    for node in graph.nodes:
        node.inputs = [s(i) for i in node.inputs]
        if node.effect is not None:
            nodes.append(node)
            continue
        if node.op.impure:
            nodes.append(node)
            continue
        replacement = _simplify_node(node)
        if isinstance(replacement, Value) and node.op.name in _COPYING and shares_external(replacement):
            replacement = None
        if replacement is None and node.inputs and all(i.kind == "const" for i in node.inputs):
            replacement = _fold(node)
        if isinstance(replacement, Value):
            subst[node.output.id] = replacement
        elif isinstance(replacement, Node):
            keep(replacement)
            subst[node.output.id] = replacement.output
        else:
            keep(node)
    return _rebuild(graph, nodes, subst)


def _fold(node: Node) -> Value | None:
    try:
        value = node.op.impl(*[i.payload for i in node.inputs], **node.params)
    except Exception:  # leave it to fail at run time, with the op's own error message
        return None
    value = value if isinstance(value, (np.ndarray, np.generic)) else np.asarray(value)
    if np.shape(value) != node.output.shape:
        return None
    return Value("const", node.output.shape, node.output.dtype, value)


def _simplify_node(node: Node) -> Value | Node | None:
    name = node.op.name
    ins, out, params = node.inputs, node.output, node.params
    if name == "mul":
        x, y = ins
        for a, b in ((x, y), (y, x)):
            if _is_const_scalar(b, 1) and _same_type(a, out):
                return a
    elif name in ("add", "sub"):
        # x + -0.0 and x - +0.0 are x for every x; x + 0.0 is not (-0.0 + 0.0 = +0.0, so 1 / (x + 0.0)
        # is +inf at x = -0.0 where 1 / x is -inf), nor is x - -0.0. The sign does not matter for ints.
        x, y = ins
        if _is_const_zero(y, negative=name == "add", result=out) and _same_type(x, out):
            return x
        if name == "add" and _is_const_zero(x, negative=True, result=out) and _same_type(y, out):
            return y
    elif name == "div":
        if _is_const_scalar(ins[1], 1) and _same_type(ins[0], out):
            return ins[0]
    elif name == "pow":
        x, y = ins
        if _is_const_scalar(y, 1) and _same_type(x, out):
            return x
        if _is_const_scalar(y, 2) and _same_type(x, out):
            from ..ops.elementwise import square_p

            return _node(square_p, [x], {}, out)
    elif name in ("nop", "astype") and _same_type(ins[0], out):
        return ins[0]
    elif name in ("sum_like", "broadcast_like", "expand_dims", "squeeze") and _same_type(ins[0], out):
        return ins[0]
    elif name in ("reshape", "broadcast_to", "sum_to"):
        x = ins[0]
        if _same_type(x, out):
            return x
        if name == "reshape" and x.kind == "node" and x.payload.op is node.op:
            return _node(node.op, [x.payload.inputs[0]], params, out)  # reshape of a reshape
    elif name == "neg":
        x = ins[0]
        if x.kind == "node" and x.payload.op is node.op:
            return x.payload.inputs[0]
    elif name == "transpose":
        x = ins[0]
        if x.kind == "node" and x.payload.op is node.op:
            inner = x.payload
            p1 = inner.params["perm"] or tuple(reversed(range(len(inner.inputs[0].shape))))
            p2 = params["perm"] or tuple(reversed(range(len(out.shape))))
            composed = tuple(p1[i] for i in p2)
            if composed == tuple(range(len(composed))) and _same_type(inner.inputs[0], out):
                return inner.inputs[0]
            return _node(node.op, [inner.inputs[0]], {"perm": composed}, out)
    return None


def _node(op: Any, inputs: list[Value], params: dict, out: Value) -> Node:
    value = Value("node", out.shape, out.dtype)
    node = Node(op, inputs, params, value)
    value.payload = node
    return node


# -- common subexpressions ---------------------------------------------------------------------
def _key(x: Any) -> Any:
    if isinstance(x, Value):
        if x.kind == "const":
            c = x.payload
            arr = np.asarray(c)
            return ("const", arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 64 else ("const-id", id(c))
        return x.id
    if isinstance(x, np.ndarray):
        return ("array", x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, (tuple, list)):
        return tuple(_key(i) for i in x)
    if isinstance(x, dict):
        return tuple((k, _key(v)) for k, v in sorted(x.items()))
    if isinstance(x, slice):
        return ("slice", x.start, x.stop, x.step)
    try:
        hash(x)
        return x
    except TypeError:
        return ("id", id(x))


def cse(graph: Graph) -> Graph:
    seen: dict[Any, Value] = {}
    subst: dict[int, Value] = {}
    nodes: list[Node] = []

    def s(v: Value) -> Value:
        while v.id in subst:
            v = subst[v.id]
        return v

    for node in graph.nodes:
        node.inputs = [s(i) for i in node.inputs]
        if node.effect is not None:
            seen.clear()  # an effect may change a captured Variable: nothing before it is reusable
            nodes.append(node)
            continue
        if node.op.impure:  # two random draws are two different values
            nodes.append(node)
            continue
        key = (id(node.op), tuple([i.id if i.kind != "const" else _key(i) for i in node.inputs]),
               _key(node.params) if node.params else ())
        previous = seen.get(key)
        if previous is not None and _same_type(previous, node.output):
            subst[node.output.id] = previous
            continue
        seen[key] = node.output
        nodes.append(node)
    return _rebuild(graph, nodes, subst)


# -- dead code -------------------------------------------------------------------------------
def dce(graph: Graph) -> Graph:
    live = {v.id for v in graph.outputs}
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        if node.effect is not None or node.output.id in live:
            kept.append(node)
            live.update(i.id for i in node.inputs)
    kept.reverse()
    return Graph(graph.inputs, graph.captures, kept, graph.outputs)


# -- fusion ------------------------------------------------------------------------------------
def _uses(graph: Graph) -> dict[int, int]:
    count: dict[int, int] = {}
    for node in graph.nodes:
        for i in node.inputs:
            count[i.id] = count.get(i.id, 0) + 1
    for v in graph.outputs:
        count[v.id] = count.get(v.id, 0) + 1
    return count


def fuse(graph: Graph) -> Graph:
    """Merge chains into single kernels computed in one buffer: a head (an elementwise op
    or a matmul) followed by elementwise ops that each consume the previous result, when
    that result has no other use and the same shape and dtype."""
    uses = _uses(graph)
    groups: dict[int, Node] = {}  # output value id of a group's current last step -> group node
    nodes: list[Node] = []
    order: dict[int, int] = {}  # id(node) -> position; a group moves to the position of its last step
    for position, node in enumerate(graph.nodes):
        if node.effect is not None:
            groups.clear()  # no group extends past an effect (it may change what the group reads)
            nodes.append(node)
            order[id(node)] = position
            continue
        if not node.output.shape:  # 0-d values run as NumPy scalars
            nodes.append(node)
            order[id(node)] = position
            continue
        name = node.op.name
        acc_input = None
        if name in ELEMENTWISE:
            allowed = KERNELS[name].inplace  # the positions where the running value may sit
            for slot, i in enumerate(node.inputs):
                if (slot in allowed and i.id in groups and uses.get(i.id) == 1 and _same_type(i, node.output)
                        and sum(1 for j in node.inputs if j is i) == 1):
                    acc_input = i
                    break
        if acc_input is not None:
            group = groups.pop(acc_input.id)
            group.op.steps.append((node.op, [ACC if i is acc_input else i for i in node.inputs], node.params))
            group.inputs.extend(i for i in node.inputs if i is not acc_input)  # (a list of the group's own)
            group.output = node.output  # the group now produces this node's output
            node.output.payload = group
            groups[node.output.id] = group
            order[id(group)] = position
            continue
        if name in ELEMENTWISE or name in FUSION_HEADS:
            group = Node(Fused([(node.op, list(node.inputs), node.params)]), list(node.inputs), None, node.output)
            node.output.payload = group
            groups[node.output.id] = group
            nodes.append(group)
            order[id(group)] = position
            continue
        nodes.append(node)
        order[id(node)] = position
    nodes.sort(key=lambda n: order[id(n)])
    # groups of a single step are plain nodes again; the others are named once they are complete
    # (naming a group at every step made fusing a chain quadratic in its length)
    final = []
    for node in nodes:
        if isinstance(node.op, Fused) and len(node.op.steps) == 1:
            op, inputs, params = node.op.steps[0]
            plain = Node(op, inputs, params, node.output)
            node.output.payload = plain
            final.append(plain)
        else:
            if isinstance(node.op, Fused):
                node.op.name = "fused[" + ", ".join(p.name for p, _, _ in node.op.steps) + "]"
            final.append(node)
    return Graph(graph.inputs, graph.captures, final, graph.outputs)


# -- horizontal batching -----------------------------------------------------------------------
BATCH_MIN = 8  # fewer members are not worth a stacked buffer


def batch(graph: Graph) -> Graph:
    """Compute many identical, independent elementwise chains as one chain over a stack.

    Members: chains (fused or single elementwise nodes) with the same steps, parameters and
    constants, each applied to one value of its own (e.g. ``1 - y * y`` for every tanh of a
    deep network's backward pass). Their inputs are computed into the rows of one stacked
    buffer, the chain runs once over the stack, and each member's result is a row of the
    output. The stacked node sits after the last input's producer and before the first use
    of any member's result; each member's input must be the result of a buffer kernel."""
    nodes = graph.nodes
    outputs = {v.id for v in graph.outputs}
    position = {n.output.id: j for j, n in enumerate(nodes) if n.output is not None}
    first_use: dict[int, int] = {}
    for j, node in enumerate(nodes):
        for i in node.inputs:
            first_use.setdefault(i.id, j)
    groups: dict[Any, list[tuple[Node, Value]]] = {}
    for node in nodes:
        member = _batch_member(node, outputs)
        if member is not None:
            key, varying = member
            groups.setdefault(key, []).append((node, varying))
    rewrites: dict[int, list[Node]] = {}  # position -> stacked node and its rows, inserted after it
    removed: set[int] = set()
    claimed: set[int] = set()  # nodes already part of a batch, as members or as producers of inputs
    for members in groups.values():
        varying = [v for _, v in members]
        if len(members) < BATCH_MIN or len({v.id for v in varying}) != len(varying):
            continue
        if any(v.kind != "node" or v.id in outputs or not _writes_buffer(v.payload) for v in varying):
            continue
        if any(id(n) in claimed for n, _ in members) or any(id(v.payload) in claimed for v in varying):
            continue
        claimed.update(id(n) for n, _ in members)
        claimed.update(id(v.payload) for v in varying)
        ready = max(position[v.id] for v in varying)
        needed = min((first_use.get(n.output.id, len(nodes)) for n, _ in members), default=len(nodes))
        if not ready < needed:
            continue
        head = members[0][0]
        steps = head.op.steps if isinstance(head.op, Fused) else [(head.op, head.inputs, head.params)]
        template = [(op, [VARYING if i is members[0][1] else i for i in ins], params) for op, ins, params in steps]
        out = head.output
        stacked_value = Value("node", (len(members),) + out.shape, out.dtype)
        stacked = Node(Stacked(template, len(members)), varying, None, stacked_value)
        stacked_value.payload = stacked
        inserted = [stacked]
        for k, (node, _) in enumerate(members):
            row = Node(ROW, [stacked_value], {"index": k}, node.output)
            node.output.payload = row
            inserted.append(row)
            removed.add(id(node))
        rewrites.setdefault(ready, []).extend(inserted)
    if not rewrites:
        return graph
    new_nodes: list[Node] = []
    for j, node in enumerate(nodes):
        if id(node) not in removed:
            new_nodes.append(node)
        new_nodes.extend(rewrites.get(j, ()))
    return Graph(graph.inputs, graph.captures, new_nodes, graph.outputs)


def _batch_member(node: Node, outputs: set[int]) -> tuple[Any, Value] | None:
    """(signature, the member's own input) when ``node`` can be a member of a batch."""
    if node.effect is not None or node.output is None or not node.output.shape or node.output.id in outputs:
        return None
    steps = node.op.steps if isinstance(node.op, Fused) else [(node.op, node.inputs, node.params)]
    if isinstance(node.op, Stacked) or any(op.name not in ELEMENTWISE for op, _, _ in steps):
        return None
    own = [i for i in node.inputs if i.kind != "const"]
    if not own or any(i is not own[0] for i in own) or own[0].shape != node.output.shape:
        return None
    varying = own[0]
    signature = tuple(
        (id(op), tuple("each" if i is varying else "acc" if i is ACC else _key(i) for i in ins), _key(params))
        for op, ins, params in steps)
    return (signature, node.output.shape, node.output.dtype.str, varying.dtype.str), varying


def _writes_buffer(node: Node) -> bool:
    """Whether a node writes its result into a buffer (so the result can be placed in a row)."""
    if node.effect is not None or isinstance(node.op, Stacked) or node.op is ROW:
        return False
    if isinstance(node.op, Fused):
        return True
    return node.op.name in KERNELS and bool(node.output.shape)
