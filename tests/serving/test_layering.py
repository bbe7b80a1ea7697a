"""The serving core's place in the layers (issue 22), read from the sources: every import statement, a
function's own included. Batch code and the serving core never import the web package (``recsys.api``)."""

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
