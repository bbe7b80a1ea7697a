"""The serving core's place in the layers (issue 22), read from the sources: every import statement, a
function's own included. Batch code and the serving core never import the web package (``recsys.api``), and
no two modules of the serving core or of the web package import each other, even through others (a module
and the sub-package holding the other count as one)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BATCH = ("pipeline", "evaluation", "flows", "families", "data", "drift", "serving", "abtest", "lab")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def imports(path: Path) -> set[str]:
    """The names a module imports (``from a.b import c``: ``a.b`` and ``a.b.c``, whether ``c`` is a module or not)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import"
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (sub-packages included) and what it imports."""
    return {module_name(p): imports(p) for p in sorted(ROOT.joinpath(*package.split(".")).rglob("*.py"))}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("package", BATCH)
def test_batch_code_and_the_serving_core_never_import_the_web_package(package):
    found = {m: sorted(i for i in imported if within(i, "recsys.api"))
             for m, imported in modules(f"recsys.{package}").items()}
    assert {m: names for m, names in found.items() if names} == {}


def test_the_reader_finds_an_import_of_the_web_package_in_a_function(tmp_path):
    source = tmp_path / "batch.py"
    source.write_text("import os\n\ndef f():\n    from recsys.api.tiers import rerank_config\n")
    assert {"recsys.api.tiers", "recsys.api.tiers.rerank_config"} <= imports(source)


def sibling_imports(package: str) -> dict[str, set[str]]:
    """For each child of ``package`` (module or sub-package), the other children it imports."""
    depth = package.count(".") + 1
    graph: dict[str, set[str]] = {}
    for module, imported in modules(package).items():
        if module == package:
            continue
        child = module.split(".")[depth]
        graph.setdefault(child, set()).update(
            i.split(".")[depth] for i in imported if within(i, package) and i != package)
        graph[child].discard(child)
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (its nodes, the first repeated at the end), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, path + [node])
            if found:
                return found
        done.add(node)
        return None

    return next((c for c in (visit(n, []) for n in sorted(graph)) if c), None)


@pytest.mark.parametrize("package", ["recsys.serving", "recsys.serving.stores", "recsys.api", "recsys.api.routes"])
def test_no_import_cycle_between_the_modules_of_a_package(package):
    assert cycle(sibling_imports(package)) is None


def test_the_cycle_finder_finds_one_through_a_third_module():
    assert cycle({"service": {"realtime"}, "realtime": {"state"}, "state": {"service"}, "tiers": set()}) == [
        "realtime", "state", "service", "realtime"]
    assert cycle({"service": {"realtime", "tiers"}, "realtime": {"tiers"}, "tiers": set()}) is None
