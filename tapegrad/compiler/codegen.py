"""Code generation: an optimised graph becomes one straight-line Python function.

Every intermediate that a kernel can write with ``out=`` gets a buffer allocated once,
at compile time. Buffers are planned by liveness: a value whose last use is the node
being emitted gives its buffer to that node's result (in-place execution) when the
kernel allows it, otherwise dead buffers of the right shape and dtype are reused.
Values that leave the function (graph outputs) get fresh arrays on every call, since
the caller keeps them. 0-d values run on NumPy scalars without buffers.

The generated source is kept for inspection: ``source_of(run)``.
"""

from __future__ import annotations

import functools
import re
import zlib
from typing import Any, Callable

import numpy as np

from . import kernels as _kernels
from .ir import ACC, ROW, VARYING, Fused, Graph, Node, Stacked, Value
from .kernels import KERNELS, SCALAR_OPERATORS, SHAPED_EMITTERS, VIEW_NAMES, VIEWS


def _kernel_of(node: Node) -> str:
    """'effect', 'view', 'buffer' (writes into a buffer), 'call' (allocates), or 'stacked'
    and 'row' (horizontal batching)."""
    if node.effect is not None:
        return "effect"
    if isinstance(node.op, Stacked):
        return "stacked"
    if node.op is ROW:
        return "row"
    if isinstance(node.op, Fused):
        return "buffer"
    name = node.op.name
    if name in VIEWS and node.inputs[0].shape and node.inputs[0].kind != "const":
        return "view"
    if name in KERNELS and node.output.shape:
        return "buffer"
    return "call"


_kernels.ACC_MARK[0] = ACC


def generate(graph: Graph) -> Callable[[list, list], list]:
    nodes = graph.nodes
    kinds = [_kernel_of(n) for n in nodes]
    outputs = {v.id for v in graph.outputs}

    # The storages ("roots") each value may share memory with: a view shares its base's;
    # a primitive called through its NumPy forward may return (a view of) an input, so
    # its result is assumed to share every input's storage.
    roots: dict[int, frozenset] = {}

    def roots_of(v: Value) -> frozenset:
        return roots.get(v.id) or frozenset((v.id,))

    for node, kind in zip(nodes, kinds):
        if kind == "view":
            roots[node.output.id] = roots_of(node.inputs[0])
        elif kind == "call":
            shared = frozenset().union(*(roots_of(i) for i in node.inputs if i.kind != "const"))
            roots[node.output.id] = shared | {node.output.id}

    # Liveness of each storage: the index of the node that uses it last.
    never = len(nodes)
    last_use: dict[int, int] = {}
    for j, node in enumerate(nodes):
        for i in node.inputs:
            for r in roots_of(i):
                last_use[r] = j
    for v in graph.outputs:
        for r in roots_of(v):
            last_use[r] = never

    # Horizontal batches: the inputs of a stacked chain are computed into the rows of one
    # buffer, and its results are the rows of another. Rows are never reused for other values.
    row_of: dict[int, tuple[str, int]] = {}  # value id -> (stacked input buffer, row)
    stacks: dict[int, str] = {}  # stacked node's output id -> name of its input stack
    for node in nodes:
        if isinstance(node.op, Stacked):
            stack = f"Y{len(stacks)}"
            stacks[node.output.id] = stack
            for k, v in enumerate(node.inputs):
                row_of[v.id] = (stack, k)

    names: dict[int, str] = {}
    namespace: dict[str, Any] = {"np_empty": np.empty, **VIEW_NAMES}
    defaults: list[str] = []
    buffer_of: dict[int, str] = {}  # storage root -> buffer name
    pool: dict[tuple, list[str]] = {}
    buffers: dict[str, np.ndarray] = {}
    buffered: set[int] = set()  # values that were written into a reusable buffer
    body: list[str] = []

    def bind(name: str, value: Any) -> str:
        if name not in namespace:
            namespace[name] = value
            defaults.append(name)
        return name

    const_names: dict[int, str] = {}

    def ref(v: Any) -> str:
        if v.kind == "const":
            if v.id not in const_names:
                const_names[v.id] = bind(f"k{len(const_names)}", v.payload)
            return const_names[v.id]
        return names[v.id]

    for k, v in enumerate(graph.inputs):
        names[v.id] = f"i{k}"
    if graph.inputs:
        body.append(", ".join(names[v.id] for v in graph.inputs) + (", = I" if len(graph.inputs) == 1 else " = I"))
    for k, v in enumerate(graph.captures):
        names[v.id] = f"c{k}"
        body.append(f"c{k} = C[{k}]._value")
    # An effect may replace a captured Variable's value (assign rebinds a 0-d Variable's NumPy
    # scalar, and the array of a Variable that is not a leaf): captures used after an effect are
    # read again after it.
    capture_index = {v.id: k for k, v in enumerate(graph.captures)}
    capture_last_use: dict[int, int] = {}
    for j, node in enumerate(nodes):
        for i in node.inputs:
            if i.id in capture_index:
                capture_last_use[capture_index[i.id]] = j
    for v in graph.outputs:
        if v.id in capture_index:
            capture_last_use[capture_index[v.id]] = len(nodes)

    def take_buffer(node: Node, j: int) -> str:
        out = node.output
        # in place: an input buffer that dies here, of the output's shape and dtype
        for i in _inplace_candidates(node):
            if (i.id in buffer_of and roots_of(i) == {i.id} and last_use.get(i.id) == j
                    and i.shape == out.shape and i.dtype == out.dtype):
                return buffer_of.pop(i.id)
        free = pool.get((out.shape, out.dtype.str))
        if free:
            return free.pop()
        name = f"B{len(buffers)}"
        buffers[name] = np.empty(out.shape, out.dtype)
        bind(name, buffers[name])
        return name

    for node in nodes:  # allocate the input stacks and name their rows
        if isinstance(node.op, Stacked):
            stack = stacks[node.output.id]
            buf = np.empty(node.output.shape, node.inputs[0].dtype)
            bind(stack, buf)
            for k in range(len(node.inputs)):
                bind(f"{stack}_{k}", buf[k])

    for j, (node, kind) in enumerate(zip(nodes, kinds)):
        if kind == "stacked":
            out = f"Z{j}"
            buf = np.empty(node.output.shape, node.output.dtype)
            bind(out, buf)
            names[node.output.id] = out
            stack = stacks[node.output.id]
            for op, inputs, params in node.op.steps:
                kernel = KERNELS[op.name]
                for name, value in kernel.names.items():
                    bind(name, value)
                args = [out if i is ACC else stack if i is VARYING else ref(i) for i in inputs]
                body.extend(kernel.emit(args, out, params))
            continue
        if kind == "row":
            stacked_name = names[node.inputs[0].id]
            name = bind(f"{stacked_name}_{node.params['index']}",
                        namespace[stacked_name][node.params["index"]])
            names[node.output.id] = name
            continue
        if kind == "effect":
            fn = bind(f"e{j}", node.effect.run)
            body.append(f"{fn}({', '.join(ref(i) for i in node.inputs)})")
            body.extend(f"c{k} = C[{k}]._value" for k, last in sorted(capture_last_use.items()) if last > j)
        elif kind == "view":
            expr = VIEWS[node.op.name]([ref(i) for i in node.inputs], node.params, namespace)
            names[node.output.id] = f"v{j}"
            body.append(f"v{j} = {expr}")
        elif kind == "buffer":
            if node.output.id in outputs:
                out = f"v{j}"
                dtype = bind("dt_" + node.output.dtype.str[1:], node.output.dtype)
                body.append(f"{out} = np_empty({node.output.shape!r}, {dtype})")
            elif node.output.id in row_of:  # the input of a stacked chain: written into its row
                stack, k = row_of[node.output.id]
                out = f"{stack}_{k}"
                buffered.add(node.output.id)
            else:
                out = take_buffer(node, j)
                buffer_of[node.output.id] = out
                buffered.add(node.output.id)
            names[node.output.id] = out
            steps = node.op.steps if isinstance(node.op, Fused) else [(node.op, node.inputs, node.params)]
            for op, inputs, params in steps:
                kernel = KERNELS[op.name]
                for name, value in kernel.names.items():
                    bind(name, value)
                args = [out if i is ACC else ref(i) for i in inputs]
                if op.name in SHAPED_EMITTERS:
                    lines = SHAPED_EMITTERS[op.name](args, out, params, inputs)
                    for line in lines:  # constants the emitter names (ones_<n>_<dtype> for sums)
                        for token in line.replace("(", " ").replace(",", " ").split():
                            if token.startswith("ones_") and token not in namespace:
                                n, dt = token[5:].split("_")
                                bind(token, np.ones(int(n), np.dtype(dt)))
                    body.extend(lines)
                else:
                    body.extend(kernel.emit(args, out, params))
        elif node.op.name in SCALAR_OPERATORS and not node.params:
            names[node.output.id] = f"v{j}"
            body.append(f"v{j} = " + SCALAR_OPERATORS[node.op.name].format(*(ref(i) for i in node.inputs)))
        else:  # call the primitive's NumPy forward
            fn = node.op.impl if not node.params else functools.partial(node.op.impl, **node.params)
            bind(f"f{j}", fn)
            names[node.output.id] = f"v{j}"
            body.append(f"v{j} = f{j}({', '.join(ref(i) for i in node.inputs)})")
        # buffers whose last use was this node return to the pool
        for i in node.inputs:
            for r in roots_of(i):
                if last_use.get(r) == j and r in buffer_of:
                    name = buffer_of.pop(r)
                    buf = buffers[name]
                    pool.setdefault((buf.shape, buf.dtype.str), []).append(name)

    # An output that may share a reused buffer is copied: the caller keeps it. So is a constant
    # array (e.g. a folded gradient): every call returns a new one, as the eager ops do.
    returned = [ref(v) + (".copy()" if roots_of(v) & buffered
                          or (v.kind == "const" and isinstance(v.payload, np.ndarray)) else "")
                for v in graph.outputs]
    body.append("return [" + ", ".join(returned) + "]")
    if len(body) <= CHUNK_LINES:
        header = "def run(I, C" + "".join(f", {n}={n}" for n in defaults) + "):"
        pieces = [header + "\n" + "\n".join("    " + line for line in body)]
    else:
        pieces = _chunked(body)
    for piece in pieces:  # (one compile() per chunk: its peak memory is a chunk's)
        exec(compile(piece, "<tapegrad graph>", "exec"), namespace)  # noqa: S102 - our own generated code
    source = "\n\n".join(pieces)
    run = namespace["run"]
    # the source of a long graph is kept compressed (it is read only for inspection)
    run.source = source if len(body) <= CHUNK_LINES else None
    run.source_zlib = zlib.compress(source.encode()) if run.source is None else None
    run.buffers = buffers
    return run


def source_of(run: Callable) -> str:
    """The generated source of a compiled graph's ``run`` function."""
    return run.source if run.source is not None else zlib.decompress(run.source_zlib).decode()


def _inplace_candidates(node: Node) -> list[Value]:
    """Inputs whose buffer the node may write its result into."""
    if isinstance(node.op, Fused):
        op, inputs, _ = node.op.steps[0]
        later = {id(i) for _, ins, _ in node.op.steps[1:] for i in ins if i is not ACC}
        allowed = KERNELS[op.name].inplace
        return [i for p, i in enumerate(inputs) if p in allowed and id(i) not in later]
    allowed = KERNELS[node.op.name].inplace
    return [i for p, i in enumerate(node.inputs) if p in allowed]


# A long graph is emitted as several functions of at most this many lines: compiling one
# huge function costs more time per line, and its compiler's peak memory stays in the
# process (about 4 KB per line).
CHUNK_LINES = 1000

_LOCAL = re.compile(r"\b[vic]\d+\b")  # the generated code's local names: values, inputs, captures
_ASSIGN = re.compile(r"^((?:[vic]\d+)(?:, *[vic]\d+)*),? = ")


def _chunked(body: list[str]) -> list[str]:
    """``run(I, C)`` calling one function per chunk of ``body``. A local that a later chunk
    reads is handed over in the slot list ``S``; a slot is cleared by the chunk that reads it
    last, so intermediates die as they do in one function."""
    chunks = [body[k:k + CHUNK_LINES] for k in range(0, len(body), CHUNK_LINES)]
    reads: list[set[str]] = []  # per chunk: names read before the chunk defines them
    writes: list[set[str]] = []
    for lines in chunks:
        defined: set[str] = set()
        read: set[str] = set()
        for line in lines:
            match = _ASSIGN.match(line)
            targets = set(_LOCAL.findall(match.group(1))) if match else set()
            used = _LOCAL.findall(line[match.end():] if match else line)
            read.update(n for n in used if n not in defined)
            defined |= targets
        reads.append(read)
        writes.append(defined)
    slots: dict[str, int] = {}
    last_read: dict[str, int] = {}
    for k, read in enumerate(reads):
        for name in read:
            slots.setdefault(name, len(slots))
            last_read[name] = k
    functions = []
    for k, lines in enumerate(chunks):
        # (buffers, kernels and constants are read as globals of the namespace: as fast once
        # specialised, and a thousand default parameters made compiling slow)
        code = [f"def chunk{k}(S, I, C):"]
        code += [f"    {n} = S[{slots[n]}]" for n in sorted(reads[k])]
        code += [f"    S[{slots[n]}] = None" for n in sorted(reads[k]) if last_read[n] == k]
        code += ["    " + line for line in lines]
        if k < len(chunks) - 1:
            handed = sorted(n for n in writes[k] if n in slots and last_read[n] > k)
            code += [f"    S[{slots[n]}] = {n}" for n in handed]
        functions.append("\n".join(code))
    calls = [f"    chunk{k}(S, I, C)" for k in range(len(chunks) - 1)]
    run = ["def run(I, C):", f"    S = [None] * {len(slots)}", *calls, f"    return chunk{len(chunks) - 1}(S, I, C)"]
    return functions + ["\n".join(run)]
