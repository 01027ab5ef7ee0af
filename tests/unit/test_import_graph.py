"""The project's import graph (issue 18): no import cycles, no private name imported across modules.

Every ``import``/``from ... import`` in the project's packages counts, including the ones inside
functions (a lazy import hides a cycle from the interpreter, not from the design); imports under
``if TYPE_CHECKING:`` do not. Read with :mod:`ast`, nothing is imported.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gridlake", "jobs", "matching", "schemas", "dags", "tools")


def project_modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            parts = p.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            mods[name] = p
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str:
    """The project module ``name`` refers to (a module, or the module defining an imported name)."""
    while name and name not in mods:
        name = name.rsplit(".", 1)[0] if "." in name else ""
    return name


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def import_graph(mods: dict[str, Path]) -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """``module -> modules it imports`` and ``(importer, module, private name)`` for every ``_name`` imported."""
    graph: dict[str, set[str]] = defaultdict(set)
    private: list[tuple[str, str, str]] = []
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for top in tree.body:
            if _is_type_checking(top):
                continue
            for node in ast.walk(top):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        target = _resolve(alias.name, mods)
                        if target and target != mod:
                            graph[mod].add(target)
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        parts = package.split(".")
                        parts = parts[: len(parts) - node.level + 1]
                        base = ".".join(parts + ([node.module] if node.module else []))
                    for alias in node.names:
                        target = _resolve(f"{base}.{alias.name}", mods) or _resolve(base, mods)
                        if not target or target == mod:
                            continue
                        graph[mod].add(target)
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            private.append((mod, target, alias.name))
    return graph, private


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    nodes = sorted(set(graph) | {t for ts in graph.values() for t in ts})
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_checker_finds_a_cycle_and_a_private_import(tmp_path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    (tmp_path / "x.py").write_text("from y import _hidden\n", encoding="utf-8")
    (tmp_path / "y.py").write_text("def f():\n    import x\n", encoding="utf-8")
    graph, private = import_graph({"x": tmp_path / "x.py", "y": tmp_path / "y.py"})
    assert cycles(graph) == [["x", "y"]] and private == [("x", "y", "_hidden")]


def test_no_import_cycles():
    mods = project_modules()
    assert len(mods) > 100 and "gridlake.pipeline" in mods
    graph, _ = import_graph(mods)
    assert cycles(graph) == []


def test_no_private_name_imported_across_modules():
    _, private = import_graph(project_modules())
    assert private == []


# Layers, lowest first: a package may import its own layer and the ones below, never the ones above.
# ``matching`` is the engine library (it may use the platform's errors and ID checks); ``jobs`` are the
# night's stages; ``tools`` (generator, benchmarks, evaluation, demo) and ``dags`` sit on top. The
# platform finds the stages through ``gridlake.pipeline.STAGES`` (names, not imports).
LAYERS = {"schemas": 0, "gridlake": 1, "matching": 1, "jobs": 2, "tools": 3, "dags": 3}
ALLOWED_UPWARD: set[tuple[str, str]] = set()


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    out = []
    for mod, targets in graph.items():
        for target in targets:
            a, b = mod.split(".")[0], target.split(".")[0]
            if LAYERS[b] > LAYERS[a] and (mod, target) not in ALLOWED_UPWARD:
                out.append((mod, target))
    return sorted(out)


def test_layers_import_only_downwards():
    graph, _ = import_graph(project_modules())
    assert upward_imports({"gridlake.x": {"jobs.y", "schemas.z"}, "jobs.y": {"gridlake.x"}}) == [("gridlake.x", "jobs.y")]
    assert upward_imports(graph) == []
