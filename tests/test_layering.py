"""The packages import only downward: executor <- api <- bench <- cli, with no circle.

The import graph is read from the source with `ast` (every import: at module level, inside
functions, under TYPE_CHECKING), never by importing anything. Three rules:

1. a top-level package imports only itself and the packages below it (LAYERS);
2. no two modules import each other, directly or around a circle;
3. within every package, its own modules and its sub-packages (each taken whole) form no
   circle either (a sub-package is a unit: two siblings may not lean on each other).

The sandbox runtime (executor/sandbox/runtime) runs inside the sandbox, so it imports the
standard library and itself only.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Lowest first: each may import the ones before it, never one after it.
LAYERS = ("executor", "api", "bench", "cli")
# Ours, but no product package may import them.
FORBIDDEN = ("tests", "azr_client", "azr_trainer")
SANDBOX_RUNTIME = "executor.sandbox.runtime"


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]


def find_modules(root: Path, tops: Iterable[str]) -> dict[str, Module]:
    found: dict[str, Module] = {}
    for top in tops:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            found[name] = Module(name, path, is_package)
    return found


def imported_names(module: Module) -> set[str]:
    """Every dotted name `module` imports (relative imports resolved; `from a import b` gives
    `a.b` as well as `a`, since b may be a submodule)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.path.read_text(), str(module.path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.package.split(".")[: len(module.package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """module -> the modules of ours it imports (the deepest module each name names)."""
    graph: dict[str, set[str]] = {}
    for name, module in modules.items():
        targets: set[str] = set()
        for imported in imported_names(module):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def upward_imports(graph: dict[str, set[str]], layers: tuple[str, ...]) -> list[str]:
    rank = {top: position for position, top in enumerate(layers)}
    return sorted(
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        if rank[target.split(".")[0]] > rank[source.split(".")[0]]
    )


def sibling_cycles(modules: dict[str, Module], graph: dict[str, set[str]]) -> dict[str, list[list[str]]]:
    """For every package: circles among its own modules and its sub-packages (taken whole)."""

    def unit(package: str, module: str) -> str | None:
        if not module.startswith(package + "."):
            return None
        return f"{package}.{module[len(package) + 1 :].split('.')[0]}"

    found: dict[str, list[list[str]]] = {}
    for package in sorted(name for name, module in modules.items() if module.is_package):
        units: dict[str, set[str]] = {}
        for source, targets in graph.items():
            source_unit = unit(package, source)
            if source_unit is None:
                continue
            for target in targets:
                target_unit = unit(package, target)
                if target_unit is not None and target_unit != source_unit:
                    units.setdefault(source_unit, set()).add(target_unit)
        circles = cycles(units)
        if circles:
            found[package] = circles
    return found


@pytest.fixture(scope="module")
def tree() -> tuple[dict[str, Module], dict[str, set[str]]]:
    modules = find_modules(REPO, LAYERS)
    assert {"executor.engine", "api.server", "bench.sections", "cli.main"} <= set(modules)
    return modules, import_graph(modules)


def test_top_level_packages_import_only_downward(tree: tuple[dict[str, Module], dict[str, set[str]]]) -> None:
    _, graph = tree
    assert upward_imports(graph, LAYERS) == []


def test_no_product_package_imports_tests_client_or_trainer(
    tree: tuple[dict[str, Module], dict[str, set[str]]],
) -> None:
    modules, _ = tree
    bad = sorted(
        f"{module.name} imports {name}"
        for module in modules.values()
        for name in imported_names(module)
        if name.split(".")[0] in FORBIDDEN
    )
    assert bad == []


def test_no_circle_between_modules(tree: tuple[dict[str, Module], dict[str, set[str]]]) -> None:
    _, graph = tree
    assert cycles(graph) == []


def test_no_circle_between_sub_packages(tree: tuple[dict[str, Module], dict[str, set[str]]]) -> None:
    modules, graph = tree
    assert sibling_cycles(modules, graph) == {}


def test_the_sandbox_runtime_imports_the_standard_library_and_itself_only(
    tree: tuple[dict[str, Module], dict[str, set[str]]],
) -> None:
    modules, _ = tree
    runtime = [module for name, module in modules.items() if name.startswith(SANDBOX_RUNTIME)]
    assert runtime
    outside = sorted(
        f"{module.name} imports {name}"
        for module in runtime
        for name in imported_names(module)
        if not name.startswith(SANDBOX_RUNTIME) and name.split(".")[0] not in sys.stdlib_module_names
    )
    assert outside == []


def test_the_checks_see_a_circle_and_an_upward_import(tmp_path: Path) -> None:
    """The rules can fail: a made-up tree with every kind of fault."""
    files = {
        "low/__init__.py": "",
        "low/a.py": "from low import b\n",
        "low/b.py": "def f():\n    from low.a import f  # a circle, even inside a function\n",
        "low/sub/__init__.py": "",
        "low/sub/x.py": "from low.other import y\n",
        "low/other/__init__.py": "",
        "low/other/y.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..sub import x\n",
        "high/__init__.py": "",
        "high/m.py": "import low.a\n",
        "low/c.py": "from high import m\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    modules = find_modules(tmp_path, ("low", "high"))
    graph = import_graph(modules)
    assert graph["high.m"] == {"low.a"} and graph["low.other.y"] == {"low.sub", "low.sub.x"}
    assert upward_imports(graph, ("low", "high")) == ["low.c imports high", "low.c imports high.m"]
    assert ["low.a", "low.b"] in cycles(graph)
    siblings = sibling_cycles(modules, graph)
    assert list(siblings) == ["low"] and ["low.other", "low.sub"] in siblings["low"]
