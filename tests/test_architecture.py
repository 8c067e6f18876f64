"""The package layout docs/architecture.md draws: no import cycles, imports only downwards."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lowest first: a package may import only from packages before it (docs/architecture.md)
LAYERS = [
    "errors",
    "fileio",
    "presets",
    "config",
    "compute",
    "video",
    "labels",
    "models",
    "project",
    "tracking",
    "data",
    "evaluation",
    "interop",
    "train",
    "infer",
    "report",
    "workflow",
    "cli",
]


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def import_graph(package: str = "deg_core") -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in the file, lazily too)."""
    files = sorted((ROOT / package).rglob("*.py"))
    modules = {_module(f) for f in files}
    graph: dict[str, set[str]] = defaultdict(set)
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    graph[_module(f)].add(target if target in modules else str(node.module))
            elif isinstance(node, ast.Import):
                graph[_module(f)] |= {a.name for a in node.names if a.name.startswith(package)}
    return graph


def _package(module: str) -> str:
    return module.split(".")[1]


def test_no_module_import_cycles():
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    assert cycles == []


def test_packages_import_only_downwards():
    upward = []
    for module, targets in import_graph().items():
        if module == "deg_core":  # the lazy re-exports for notebooks
            continue
        for target in targets:
            a, b = _package(module), _package(target)
            assert a in LAYERS and b in LAYERS, f"{module} or {target} is in no layer"
            if a != b and LAYERS.index(b) > LAYERS.index(a):
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_core_never_imports_the_widgets():
    for f in (ROOT / "deg_core").rglob("*.py"):
        assert "deg_widgets" not in f.read_text(encoding="utf-8"), f


def test_notebook_names_come_from_deg_core():
    import deg_core

    for name in deg_core.__all__:
        assert getattr(deg_core, name) is not None


def test_every_name_a_notebook_imports_from_deg_core_exists():
    import deg_core

    for source in sorted((ROOT / "notebooks" / "src").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "deg_core":
                for alias in node.names:
                    assert alias.name in deg_core.__all__, f"{source.name}: {alias.name}"
                    assert getattr(deg_core, alias.name) is not None
