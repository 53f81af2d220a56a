"""The module import graph of tapegrad has no cycles, counting imports inside functions.

The graph is built from the source (every module is ast-parsed; nothing is imported).
An edge A -> B means that running A's module body imports B: ``import B``,
``from B import x`` (and ``B.x`` when that is a module), with relative imports resolved,
plus every package on the way to B whose ``__init__`` would run (``from ..layers.base
import Layer`` also runs ``layers/__init__``). Packages that contain A are already being
imported when A runs, so they are not edges. Imports inside functions (lazy imports) and
under ``if TYPE_CHECKING:`` are not edges by default.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tapegrad

PACKAGE_DIR = Path(tapegrad.__file__).parent


def module_files(package_dir: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package __init__)."""
    modules = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules[".".join(parts)] = (path, is_package)
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_statements(tree: ast.Module, function_level: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run with the module body (and those inside functions
    too with ``function_level``)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if function_level:
                    walk(node.body)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                continue
            else:
                for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                    walk(getattr(node, field, None) or [])

    walk(tree.body)
    return found


def import_graph(package_dir: Path, function_level: bool = False) -> dict[str, set[str]]:
    modules = module_files(package_dir)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        named: set[str] = set()
        for node in import_statements(ast.parse(path.read_text(encoding="utf-8")), function_level):
            if isinstance(node, ast.Import):
                named.update(alias.name for alias in node.names)
                continue
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            named.add(base)
            named.update(f"{base}.{alias.name}" for alias in node.names)
        running = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        edges = set()
        for target in named:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                step = ".".join(parts[:i])
                if step in modules and step not in running and step != name:
                    edges.add(step)
        graph[name] = edges
    return graph


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; only the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def cycles_among(prefix: str, function_level: bool = False) -> list[list[str]]:
    graph = import_graph(PACKAGE_DIR, function_level)
    sub = {name: {t for t in targets if t.startswith(prefix)} for name, targets in graph.items()
           if name.startswith(prefix)}
    return strongly_connected_components(sub)


def test_no_import_cycle_among_nn_modules():
    assert cycles_among("tapegrad.nn") == []


def test_no_import_cycle_among_nn_modules_counting_imports_inside_functions():
    # Lazy imports keep `import tapegrad` cheap, but they must not hide a circle either:
    # losses <-> metrics, callbacks <-> history and model <-> saving <-> sequential were ones.
    assert cycles_among("tapegrad.nn", function_level=True) == []


def test_no_import_cycle_in_the_whole_package_counting_imports_inside_functions():
    # autodiff <-> compiler (control_flow_error), reduction <-> shape and errors <-> autodiff were ones
    assert cycles_among("tapegrad", function_level=True) == []


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_graph_finds_direct_package_init_and_lazy_cycles(tmp_path):
    pkg = _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\n",
        "pkg/b.py": "from .a import thing\n",
        "pkg/sub/__init__.py": "from .inner import x\n",
        "pkg/sub/inner.py": "from ..c import y\nfrom . import helper\n",
        "pkg/sub/helper.py": "",
        "pkg/c.py": "import pkg.sub.helper\n",
        "pkg/d.py": "def f():\n    from . import e\n",
        "pkg/e.py": "from typing import TYPE_CHECKING\nfrom . import d\nif TYPE_CHECKING:\n    from . import a\n",
    })
    graph = import_graph(pkg)
    assert graph["pkg.sub.inner"] == {"pkg.c", "pkg.sub.helper"}  # pkg.sub contains inner: not an edge
    assert graph["pkg.c"] == {"pkg.sub", "pkg.sub.helper"}  # pkg.sub's __init__ runs first
    assert graph["pkg.e"] == {"pkg.d"}  # TYPE_CHECKING imports never run
    assert strongly_connected_components(graph) == [
        ["pkg.a", "pkg.b"], ["pkg.c", "pkg.sub", "pkg.sub.inner"],
    ]
    assert ["pkg.d", "pkg.e"] in strongly_connected_components(import_graph(pkg, function_level=True))
