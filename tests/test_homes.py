"""One home per concept, read from the sources (issue 22): the Redis key names are imported from ``recsys.keys``
only, and no other module of recsys defines or re-exports one; ``get_settings()`` is called by the entry points
only, every library function receives its settings (or the values it needs) as arguments."""

from __future__ import annotations

import ast
from pathlib import Path

from recsys import keys

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("recsys", "dags", "plugins", "bench", "scripts", "tests")
KEY_NAMES = {name for name in vars(keys) if name.startswith("KEY_")} | {"IMPRESSIONS_GROUP"}


def python_files() -> list[Path]:
    return sorted(p for folder in SOURCES for p in ROOT.joinpath(folder).rglob("*.py"))


def key_imports_elsewhere(path: Path) -> list[str]:
    """``module.NAME`` for every key name ``path`` imports from a module other than ``recsys.keys``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module != "recsys.keys":
            found += [f"{node.module}.{a.name}" for a in node.names if a.name in KEY_NAMES]
    return found


def test_the_key_names_are_imported_from_recsys_keys_only():
    found = {str(p.relative_to(ROOT)): names for p in python_files() if (names := key_imports_elsewhere(p))}
    assert found == {}


def test_no_other_module_of_recsys_defines_a_key_name():
    import recsys.constants as constants

    assert sorted(KEY_NAMES & set(vars(constants))) == []


def test_the_reader_finds_a_key_name_imported_through_another_module(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from recsys.constants import (\n        VIEW, KEY_RECS,\n    )\n")
    assert key_imports_elsewhere(source) == ["recsys.constants.KEY_RECS"]



# the entry points: the CLI and its command modules, the clients they build, the app factory (and its FastAPI
# dependency providers), Alembic's environment, and the flows (the bodies of the Airflow tasks: the DAG files only
# wire them) -- outside recsys/: the DAG files, plugins/ and the bench scripts
SETTINGS_READERS = {
    "recsys/cli.py", "recsys/clients.py", "recsys/evaluation/command.py", "recsys/api/app.py", "recsys/api/deps.py",
    "recsys/migrations/env.py", "recsys/flows/nightly.py", "recsys/flows/hourly.py", "recsys/flows/challenger.py",
    "recsys/settings.py",
}


def reads_the_environment(path: Path) -> bool:
    """Whether ``path`` calls ``get_settings`` (by name or as an attribute: ``settings.get_settings()``)."""
    return any(isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == "get_settings"
               for n in ast.walk(ast.parse(path.read_text(), filename=str(path))))


def test_get_settings_is_called_by_the_entry_points_only():
    sources = sorted(ROOT.joinpath("recsys").rglob("*.py"))
    callers = {str(p.relative_to(ROOT)) for p in sources if reads_the_environment(p)}
    assert sorted(callers - SETTINGS_READERS) == []


def test_the_reader_finds_a_call_of_get_settings(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f(settings=None):\n    return settings or recsys.settings.get_settings()\n")
    assert reads_the_environment(source)
    source.write_text("from recsys.settings import get_settings\n")  # imported, never called
    assert not reads_the_environment(source)
