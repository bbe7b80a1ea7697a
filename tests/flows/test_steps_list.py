"""The one step list (recsys.pipeline.steps): the DAGs' task ids, the flow functions, the lineage entries and the
step records all come from it, and every step records itself through ``recording`` (issue 22)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from recsys.lineage import Where, hourly_io, nightly_io
from recsys.pipeline import steps
from recsys.pipeline.steps import HOURLY, NIGHTLY, step

ROOT = Path(__file__).resolve().parents[2]
WHERE = Where("postgresql://h:5432/db", "s3://b/artifacts", "redis://h:6379/0")
RECORDERS = ("recorded", "recording")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.mark.parametrize("dag_id", sorted(steps.DAGS))
def test_the_dags_task_ids_are_the_steps(dagbag, dag_id):
    assert dagbag.import_errors == {}
    assert sorted(t.task_id for t in dagbag.dags[dag_id].tasks) == sorted(s.name for s in steps.DAGS[dag_id])


def test_a_tasks_airflow_settings_come_from_its_step(dagbag):
    dag = dagbag.dags["recsys_nightly"]
    for s in NIGHTLY:
        task = dag.get_task(s.name)
        assert task.max_active_tis_per_dagrun == s.parallel, s.name
        assert task.trigger_rule == (s.trigger_rule or "all_success"), s.name
        assert [a.name for a in task.outlets] == ([f"recsys_{s.outlet}"] if s.outlet else []), s.name


def test_every_step_has_its_flow_function():
    from recsys.flows import hourly, nightly

    missing = [f"{module.__name__}.{s.name}" for module, listed in ((nightly, NIGHTLY), (hourly, HOURLY))
               for s in listed if not callable(getattr(module, s.name, None))]
    assert missing == []


def test_the_lineage_entries_are_the_steps():
    facts = {"day": "2026-11-20", "model_id": "m"}
    for io, listed in ((nightly_io, NIGHTLY), (hourly_io, HOURLY)):
        for s in listed:
            inputs, outputs = io(s.name, facts, WHERE)
            assert inputs, s.name
            assert len(outputs) >= len(s.writes), s.name  # every declared dataset named (a run's may be two)
    with pytest.raises(ValueError, match="has no task 'segments'"):
        nightly_io("segments", {}, WHERE)


def test_a_dataset_the_lineage_cannot_name_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(steps, "NIGHTLY", (steps.Step("extract", "extract", ("table:user_events",), ("elsewhere",)),))
    monkeypatch.setitem(steps.DAGS, "recsys_nightly", steps.NIGHTLY)
    with pytest.raises(ValueError, match="unknown dataset 'elsewhere'"):
        nightly_io("extract", {}, WHERE)


def test_step_names_an_unknown_step_clearly():
    assert step("precompute").record_name({"shard": 3}) == "precompute:3"
    assert step("flush_impressions", "recsys_ab_results").record is None
    with pytest.raises(ValueError, match="recsys_nightly has no step 'segment'.*known: \\['data_drift'"):
        step("segment")
    with pytest.raises(ValueError, match="keeps no record"):
        step("flush_impressions", "recsys_ab_results").record_name()


def recorder_steps(path: Path) -> list[str]:
    """The steps ``path`` records: ``recorded(step("x"))`` and ``recording(engine, day, step("x"))`` calls."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in RECORDERS:
            for arg in node.args:
                if isinstance(arg, ast.Call) and getattr(arg.func, "id", None) == "step":
                    found.append(arg.args[0].value)
    return found


def record_writers(path: Path) -> list[str]:
    """Names of the record writers (``record_step``, ``record_failure``) that ``path`` uses."""
    tree = ast.parse(path.read_text(), filename=str(path))
    writers = ("record_step", "record_failure")
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in writers}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names if a.name in writers}
    return sorted(used | imported)


def test_every_recorded_step_records_itself_once_through_the_step_list():
    sources = sorted(ROOT.joinpath("recsys").rglob("*.py"))
    recorded = Counter(name for path in sources for name in recorder_steps(path))
    assert recorded == Counter(s.name for s in NIGHTLY if s.record is not None)


def test_no_step_writes_its_record_by_hand():
    allowed = {ROOT / "recsys/pipeline/steps.py", ROOT / "recsys/pipeline/runs.py"}
    sources = [p for folder in ("recsys", "dags", "plugins") for p in sorted(ROOT.joinpath(folder).rglob("*.py"))]
    found = {str(p.relative_to(ROOT)): names for p in sources if p not in allowed and (names := record_writers(p))}
    assert found == {}


def test_the_readers_find_a_recorder_and_a_hand_written_record(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from recsys.pipeline.runs import record_step\n"
                      "@recorded(step('train'))\ndef f(engine, day):\n"
                      "    with steps.recording(engine, day, step('lists')):\n"
                      "        record_step(engine, day, 'x', 'SUCCESS', {})\n")
    assert sorted(recorder_steps(source)) == ["lists", "train"]
    assert record_writers(source) == ["record_step"]


def test_the_decorated_flow_functions_carry_their_step():
    from recsys.flows import nightly

    for s in NIGHTLY:
        fn = getattr(nightly, s.name)
        if hasattr(fn, "step"):
            assert fn.step is s, s.name
