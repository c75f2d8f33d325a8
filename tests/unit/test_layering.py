"""The layout as a test: read the import graph (ast) and keep the layering of the README.

Nodes are packages: the shared kernel ``cti.core``, ``cti.calendar``, the database gateway
``cti.gateway``, the composition root (everything else under ``cti``), and every domain package
(``access``, ``faq``, ``supervision``, ``records``, ``screenpop``, ``telephony``).

Rules:
* the kernel imports nothing of ours;
* only the composition root imports the composition root;
* no cycle between packages (the composition root aside: it imports everyone);
* nobody imports another package's private module or private name (a leading underscore).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ("access", "faq", "supervision", "records", "screenpop", "telephony")
SHARED_CTI = ("cti.core", "cti.calendar", "cti.gateway")
COMPOSITION_ROOT = "cti"
KERNEL = "cti.core"


def package_of(module: str) -> str | None:
    """The node a dotted module name belongs to, or None for third-party modules."""
    for shared in SHARED_CTI:
        if module == shared or module.startswith(shared + "."):
            return shared
    top = module.split(".")[0]
    if top == "cti":
        return COMPOSITION_ROOT
    return top if top in DOMAINS else None


def source_modules() -> Iterator[tuple[str, Path]]:
    for top in ("cti", *DOMAINS):
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def imports_of(module: str, path: Path) -> Iterator[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import statement, local ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield base, alias.name


def edges() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> the 'module imports target' lines that make the edge."""
    graph: dict[str, dict[str, list[str]]] = {}
    for module, path in source_modules():
        source = package_of(module)
        assert source is not None
        for target_module, _name in imports_of(module, path):
            target = package_of(target_module)
            if target is None or target == source:
                continue
            graph.setdefault(source, {}).setdefault(target, []).append(f"{module} imports {target_module}")
    return graph


def test_the_kernel_imports_nothing_of_ours() -> None:
    assert edges().get(KERNEL, {}) == {}


def test_only_the_composition_root_imports_it() -> None:
    offenders = {
        source: lines[COMPOSITION_ROOT]
        for source, lines in edges().items()
        if source != COMPOSITION_ROOT and COMPOSITION_ROOT in lines
    }
    assert offenders == {}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of packages that import each other (directly or around a loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def test_no_cycle_between_packages() -> None:
    all_edges = edges()
    graph = {
        source: {t for t in targets if t != COMPOSITION_ROOT}
        for source, targets in all_edges.items()
        if source != COMPOSITION_ROOT
    }
    cycles = {
        " <-> ".join(group): sorted({line for a in group for b in group if b in all_edges.get(a, {})
                                     for line in all_edges[a][b]})
        for group in strongly_connected(graph)
        if len(group) > 1
    }
    assert cycles == {}


def test_no_import_of_another_packages_private_parts() -> None:
    offenders = []
    for module, path in source_modules():
        source = package_of(module)
        for target_module, name in imports_of(module, path):
            target = package_of(target_module)
            if target is None or target == source:
                continue
            private_module = any(part.startswith("_") and part != "__init__" for part in target_module.split("."))
            private_name = name is not None and name.startswith("_") and name != "__version__"
            if private_module or private_name:
                offenders.append(f"{module} imports {target_module}{'.' + name if name else ''}")
    assert offenders == []


def test_the_graph_is_read_at_all() -> None:
    """Guard the guard: the graph has the edges we know exist."""
    graph = edges()
    assert "cti.core" in graph.get("records", {})
    assert {"access", "records", "telephony"} <= set(graph[COMPOSITION_ROOT])
