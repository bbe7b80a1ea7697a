"""Closing an A/B test is decided once, on the real PostgreSQL (and on SQLite): racing closers, a
stale results write after the close, and a treatment archived during its test; a winner is released once
(``results.release_winner``: the one release path, ``make_live``, stood in for here by its switch: its
lists-before-the-switch order is tested with real models in tests/pipeline/test_release.py)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from ab_helpers import seed_traffic
from recsys import registry
from recsys.abtest import results as R
from recsys.abtest import service, store
from recsys.db.models import ModelPromotion

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
START = NOW - dt.timedelta(hours=2)


def begin(engine, settings, hours=24.0):
    return service.start_test(engine, treatment_model_id="m-treat", control_model_id="m-control",
                              duration_hours=hours, treatment_fraction=0.5, now=START, settings=settings)


def promotions_of(engine, model_id: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(ModelPromotion).where(ModelPromotion.model_id == model_id))


@pytest.fixture
def released(monkeypatch):
    """``make_live`` as the release calls it, reduced to its switch (these worlds' models have no files to
    precompute from); every call recorded."""
    from recsys.pipeline import release

    calls = []

    def make_live(engine, store_, redis, model_id, reason, *, settings, expected_live, allow_archived, **kw):
        calls.append(model_id)
        return registry.promote(engine, model_id, reason=reason, expected_live=expected_live,
                                allow_archived=allow_archived)

    monkeypatch.setattr(release, "make_live", make_live)
    return calls


@pytest.fixture
def decisions(monkeypatch):
    """Every decision taken (``decide_outcome`` calls, from any thread)."""
    taken, real = [], R.decide_outcome

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        taken.append(out)
        return out

    monkeypatch.setattr(R, "decide_outcome", spy)
    return taken


def run_together(calls) -> list:
    """Run the calls in threads released at once by a barrier; their results or exceptions."""
    barrier, out = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            out[i] = call()
        except Exception as exc:  # noqa: BLE001 - returned for the test to judge
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


@pytest.mark.parametrize("attempt", range(3))
def test_racing_closers_decide_once_and_promote_the_winner_once(world, ab_settings, decisions, released, attempt):
    """/stop twice, the hourly run's close and close_expired, released together: one decision; then releasers
    racing: one promotion."""
    test = begin(world, ab_settings, hours=1.5)  # ended 30 minutes ago: every closer may close it
    seed_traffic(world, test, 150, {"control": 0.2, "treatment": 0.45})
    tid = test["test_id"]
    out = run_together([
        lambda: service.stop_test(world, tid, now=NOW, settings=ab_settings),
        lambda: service.stop_test(world, tid, now=NOW, settings=ab_settings),
        lambda: R.run_interval(world, NOW - dt.timedelta(hours=1), NOW, ab_settings),
        lambda: service.close_expired(world, now=NOW, settings=ab_settings),
    ])
    refused = [o for o in out if isinstance(o, Exception)]
    assert all(isinstance(e, store.InvalidTestError) and "not RUNNING" in str(e) for e in refused), refused
    assert len(decisions) == 1 and decisions[0]["action"] == "release"
    assert decisions[0]["expected_live"] == "m-control"
    closed = store.get_test(world, tid)
    assert closed["status"] in ("COMPLETED", "STOPPED") and closed["results"]["decision"] == decisions[0]
    assert registry.get_live(world).model_id == "m-control"  # not LIVE before the release writes its lists
    out = run_together([lambda: R.release_winner(world, None, None, tid, ab_settings) for _ in range(3)])
    assert sorted(o["action"] or "" for o in out) == ["", "", "promoted"] and released == ["m-treat"]
    decision = store.get_test(world, tid)["results"]["decision"]
    assert decision["action"] == "promoted" and decision["previous_live_model_id"] == "m-control"
    assert promotions_of(world, "m-treat") == 1
    assert registry.get_live(world).model_id == "m-treat"


def test_a_results_write_that_lands_after_the_close_leaves_the_decision(world, ab_settings, monkeypatch):
    """update_results computes, a closer decides meanwhile (another connection), then the stale write comes."""
    test = begin(world, ab_settings)
    seed_traffic(world, test, 150, {"control": 0.2, "treatment": 0.45})
    tid, real, closed = test["test_id"], R.compute_results, {}

    def close_meanwhile(engine, test_id, as_of=None, settings=None):
        fresh = real(engine, test_id, as_of, settings)
        if not closed:  # the first computation is update_results': the test is stopped while it runs
            closed["row"] = None
            closer = threading.Thread(target=lambda: closed.update(
                row=service.stop_test(engine, test_id, now=NOW, settings=settings)))
            closer.start()
            closer.join(60)
        return fresh

    monkeypatch.setattr(R, "compute_results", close_meanwhile)
    returned = R.update_results(world, tid, as_of=NOW, settings=ab_settings)
    decision = closed["row"]["results"]["decision"]
    assert decision["action"] == "release"
    stored = store.get_test(world, tid)
    assert stored["status"] == "STOPPED" and stored["results"]["decision"] == decision
    assert stored["results"] == closed["row"]["results"] and returned == stored["results"]


def test_a_treatment_archived_during_its_test_is_not_made_live(world, ab_settings, released, caplog):
    test = begin(world, ab_settings)
    seed_traffic(world, test, 150, {"control": 0.2, "treatment": 0.45})
    registry.archive(world, "m-treat", reason="an operator archived it during the test")
    row = service.stop_test(world, test["test_id"], now=NOW, settings=ab_settings)
    decision = row["results"]["decision"]
    assert row["winner"] == "treatment" and decision["action"] == "blocked"
    assert "m-treat is ARCHIVED" in decision["reason"]
    assert registry.get_live(world).model_id == "m-control"
    assert registry.get_model(world, "m-treat").status == "ARCHIVED"
    assert promotions_of(world, "m-treat") == 0
    assert R.release_winner(world, None, None, test["test_id"], ab_settings)["action"] is None  # nothing waits
    assert released == []
    with pytest.raises(registry.ArchivedModelError, match="m-treat is ARCHIVED"):
        registry.promote(world, "m-treat", reason="A/B winner", expected_live="m-control", allow_archived=False)
    registry.promote(world, "m-treat", reason="by hand (models promote)")  # an operator may bring it back
    assert registry.get_live(world).model_id == "m-treat"
