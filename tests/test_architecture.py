"""The shape of the code base (docs/architecture.md): no import cycles, dependencies in one
direction. Read from the source with ``ast``, imports inside functions included, so a cycle
cannot hide in a function body."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitoring", "clinics")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[str]:
    """Every project module ``path`` imports, at the top or inside a function."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if n in MODULES else node.module for n in names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name:
                yield name


GRAPH = {name: set(_imports(path)) - {name} for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_module_graph_was_read():
    assert len(MODULES) > 60
    assert "monitoring.flags.services" in GRAPH["monitoring.tasks"]


def test_there_are_no_import_cycles_counting_imports_inside_functions():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _reaches(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        for nxt in GRAPH.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("pure", ["monitoring.analytics", "monitoring.charts"])
def test_the_pure_parts_import_nothing_of_django_or_the_rest_of_the_project(pure):
    checked = [name for name in MODULES if name == pure or name.startswith(pure + ".")]
    assert len(checked) > 1, pure
    for name, path in MODULES.items():
        if name in checked:
            tree = ast.parse(path.read_text())
            imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            assert not [i for i in imported if i.split(".")[0] in ("django", "rest_framework", "clinics")], (
                name
            )
            outside = {m for m in GRAPH[name] if not m.startswith(("monitoring.analytics", pure))}
            assert outside == set(), name


#: Interfaces: they use the layers below and never each other.
PAGES = (
    "monitoring.care.views",
    "monitoring.collection.views",
    "monitoring.collection.staff_views",
    "monitoring.clinic_admin.views",
    "monitoring.security.views",
    "monitoring.team.views",
)
API = ("monitoring.api",)


def _is(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_pages_and_the_api_never_import_each_other():
    assert all(any(_is(name, (part,)) for name in GRAPH) for part in PAGES + API), (
        "a part is not in the graph"
    )
    for name in GRAPH:
        if _is(name, PAGES):
            assert not [m for m in _reaches(name) if _is(m, API)], name
        if _is(name, API):
            assert not [m for m in _reaches(name) if _is(m, PAGES)], name


def test_clinics_does_not_depend_on_monitoring():
    assert "clinics.models" in GRAPH and "clinics.services" in GRAPH
    for name in GRAPH:
        if name.startswith("clinics"):
            assert not [m for m in GRAPH[name] if m.startswith("monitoring")], name


def test_services_and_selectors_do_not_reach_pages_or_the_api():
    lower = [n for n in GRAPH if n.rsplit(".", 1)[-1] in ("services", "selectors", "models")]
    assert len(lower) > 10
    for name in lower:
        assert not [m for m in _reaches(name) if _is(m, PAGES + API)], name


def test_allauths_internals_are_used_through_one_module_only():
    """allauth's ``internal`` packages are not its public API: monitoring.security.allauth wraps
    the few we use (pinned to 65.21.x), so an upgrade has one module to read again."""
    users = []
    for folder in ("monitoring", "clinics", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                if any(n.startswith("allauth.") and ".internal" in n for n in names):
                    users.append(str(path.relative_to(ROOT)))
    assert sorted(set(users)) == ["monitoring/security/allauth.py"]
