"""python -m recsys: the command line against the real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys

import pytest

from shop_dates import LAST_EVENT_DAY, REDIS_URL


@pytest.fixture
def cli_env(shop_engine, redis_client, tmp_path, monkeypatch):
    from recsys import clients, settings

    monkeypatch.setenv("RECSYS_DATABASE_URL", shop_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RECSYS_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("RECSYS_ARTIFACT_URI", str(tmp_path / "artifacts"))
    for fn in (settings.get_settings, clients.get_engine, clients.get_redis):
        fn.cache_clear()
    yield shop_engine
    for fn in (settings.get_settings, clients.get_engine, clients.get_redis):
        fn.cache_clear()


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "recsys", "--help"], capture_output=True, text=True, check=True)
    for command in ("db", "generate", "load", "models", "recs", "serve"):
        assert command in out.stdout


def test_bad_arguments_exit_2_with_a_message():
    out = subprocess.run([sys.executable, "-m", "recsys", "models", "explode"], capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice" in out.stderr


@pytest.mark.slow  # tens of seconds: not in make test-fast
def test_rollback_restores_the_previous_model_and_its_recommendations(cli_env, redis_client, capsys):
    from recsys import registry
    from recsys.cli import main
    from recsys.clients import get_store
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model

    params = TrainParams(epochs=3, no_components=8, window_days=14)
    first = train_model(cli_env, get_store(), LAST_EVENT_DAY, params)["model_id"]
    second = train_model(cli_env, get_store(), LAST_EVENT_DAY, params)["model_id"]
    assert main(["models", "promote", first]) == 0
    assert main(["models", "promote", second]) == 0
    some_key = next(redis_client.scan_iter("recs:*"))
    assert json.loads(redis_client.get(some_key))["model_version"] == second

    assert main(["models", "rollback"]) == 0
    assert registry.get_live(cli_env).model_id == first
    assert json.loads(redis_client.get(some_key))["model_version"] == first
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {m["model_id"]: m["status"] for m in listed} == {first: "LIVE", second: "ARCHIVED"}


def test_output_cut_short_by_a_pipe_is_not_an_error():
    """``python -m recsys models list | head`` under ``set -o pipefail`` (as make run does) exits 0."""
    import subprocess
    import sys

    script = f"set -o pipefail; {sys.executable} -c 'from recsys.cli import _print; _print(list(range(200000)))' | head -2"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[", "  0,"] and "Error" not in done.stderr


@pytest.mark.slow  # tens of seconds: not in make test-fast
def test_models_verify_and_a_refused_rollback_through_the_cli(cli_env, redis_client):
    """``models verify`` exits 1 naming each bad file; ``models rollback`` to a model with a deleted file
    is refused with the file named and the LIVE model unchanged."""
    from recsys import registry
    from recsys.artifacts import model_key
    from recsys.clients import get_store
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model
    from recsys.pipeline.publish import publish_model

    store, params = get_store(), TrainParams(epochs=1, no_components=4, window_days=7, threads=1)
    first, second = (train_model(cli_env, store, LAST_EVENT_DAY, params)["model_id"] for _ in range(2))
    for model_id in (first, second):
        publish_model(cli_env, store, model_id)
        registry.promote(cli_env, model_id, reason="nightly")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "recsys", "models", *args], capture_output=True, text=True,
                              timeout=120)

    done = cli("verify")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model_id"] == second and json.loads(done.stdout)["ok"]
    data = bytearray(store.get_bytes(model_key(first, "item_vectors.npy")))
    data[-1] ^= 1
    store.put_bytes(model_key(first, "item_vectors.npy"), bytes(data))
    store.delete_prefix(model_key(first, "model.npz"))
    done = cli("verify", first)
    assert done.returncode == 1
    assert f"model {first}: item_vectors.npy: mismatch" in done.stderr
    assert f"model {first}: model.npz: missing" in done.stderr
    done = cli("rollback")
    assert done.returncode == 1 and done.stderr.startswith("error: ")
    assert f"{first}/model.npz (missing)" in done.stderr and f"{first}/item_vectors.npy (mismatch)" in done.stderr
    assert registry.get_live(cli_env).model_id == second
MODEL_A, MODEL_B, UNKNOWN = "01AAAAAAAAAAAAAAAAAAAAAAAA", "01BBBBBBBBBBBBBBBBBBBBBBBB", "01NOSUCHMODEL0000000000000"


@pytest.fixture
def registry_env(engine, monkeypatch, tmp_path):
    """The real CLI in a subprocess against the test database, with two registered models."""
    import datetime as dt
    from pathlib import Path

    from recsys import registry

    for model_id, day, epochs, ndcg in ((MODEL_A, 19, 30, 0.21), (MODEL_B, 20, 10, 0.18)):
        window = [f"2026-10-{day}", f"2026-11-{day - 1}"]
        registry.register_model(engine, model_id=model_id, model_type="HYBRID", train_date=dt.date(2026, 11, day),
                                params={"epochs": epochs, "loss": "bpr", "train_days": window},
                                samples=1000 + day, artifact_uri=f"s3://b/models/{model_id}/")
        protocol = {"day": f"2026-11-{day}", "users": 40 + day, "positives": 99}
        registry.set_metrics(engine, model_id, {"new": {"ndcg@10": ndcg, "auc": 0.9}, "protocol": protocol})
    env = {**os.environ, "RECSYS_DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "RECSYS_VAR_DIR": str(tmp_path)}
    return env, Path(__file__).resolve().parents[1]


def run_cli(env_root, *args):
    env, root = env_root
    return subprocess.run([sys.executable, "-m", "recsys", *args], capture_output=True, text=True, env=env, cwd=root,
                          timeout=120)


@pytest.mark.slow  # tens of seconds: not in make test-fast
def test_models_compare_prints_params_window_samples_and_metrics_side_by_side(registry_env):
    out = run_cli(registry_env, "models", "compare", MODEL_A, MODEL_B)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()[1:]}
    assert lines["params.epochs"] == ["30", "10", "-20"]
    assert lines["params.loss"] == ["bpr", "bpr"]
    assert lines["samples"] == ["1019", "1020", "+1"]
    assert lines["training"] == ["window", "2026-10-19", "..", "2026-11-18", "2026-10-20", "..", "2026-11-19"]
    assert lines["metrics.ndcg@10"] == ["0.21", "0.18", "-0.03"]
    assert lines["validation.users"] == ["59", "60", "+1"]

    as_json = run_cli(registry_env, "models", "compare", MODEL_A, MODEL_B, "--json")
    rows = {r["field"]: r for r in json.loads(as_json.stdout)}
    assert rows["metrics.auc"] == {"field": "metrics.auc", "a": 0.9, "b": 0.9, "b_minus_a": 0.0}


@pytest.mark.parametrize("ids", [(MODEL_A, UNKNOWN), (UNKNOWN, MODEL_A), (UNKNOWN,)])
def test_models_compare_of_an_unknown_or_missing_id_exits_2_with_a_message(registry_env, ids):
    out = run_cli(registry_env, "models", "compare", *ids)
    assert out.returncode == 2 and out.stdout == ""
    assert (f"unknown model id '{UNKNOWN}'" in out.stderr if len(ids) == 2 else "needs two MODEL_IDs" in out.stderr)


MODEL_LINE = re.compile(r"^(?P<id>[0-9A-Z]{26})  (?P<status>[A-Z]+) +(?P<family>\S+) +v(?P<version>\d+) +"
                        r"trained (?P<day>\d{4}-\d\d-\d\d)  samples (?P<samples>\d+) +ndcg@10 (?P<ndcg>-|\d\.\d{4})"
                        r"(  promoted \d{4}-\d\d-\d\dT\d\d:\d\d)?$")


def test_make_run_shows_one_line_per_model_and_personalised_users_with_their_reasons(cli_env, redis_client):
    """The commands scripts/run_demo.sh runs (`make run`), as it runs them, checked on what they print:
    ``models list`` (one line per model), ``recs --sample 3`` (three users the API personalises, with model
    reasons, never a fallback tier's) and ``recs --sample 1 --ids`` (the user the printed curl asks for)."""
    from sqlalchemy import func, select

    from recsys.cli import main
    from recsys.clients import get_store
    from recsys.constants import REASON_LIKE_YOU, REASON_NEW_ARRIVAL
    from recsys.db.models import UserEvent
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model
    from recsys.serving.session_state import COUNTED_EVENTS
    from recsys.settings import get_settings

    params = TrainParams(epochs=2, no_components=8, window_days=14, threads=1)
    first, second = (train_model(cli_env, get_store(), LAST_EVENT_DAY, params)["model_id"] for _ in range(2))
    assert main(["models", "promote", second]) == 0

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "recsys", *args], capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        return done.stdout

    lines = [MODEL_LINE.match(line) for line in cli("models", "list").splitlines()]
    assert all(lines) and len(lines) == 2, lines
    assert [(m["id"], m["status"], m["family"]) for m in lines] == [(second, "LIVE", "HYBRID"),
                                                                     (first, "TRAINING", "HYBRID")]
    assert [len(m.group(0)) < 160 for m in lines] == [True, True]
    assert [row["model_id"] for row in json.loads(cli("models", "list", "--json"))] == [second, first]

    out = cli("recs", "--sample", "3", "--num-items", "4")
    headers = re.findall(r"^user (\d+) \(model (\w+)\):$", out, flags=re.MULTILINE)
    assert len(headers) == 3 and {model for _, model in headers} == {second}, out
    users = [int(u) for u, _ in headers]
    reasons = [re.split(r"\s{2,}", line.strip())[-1] for line in out.splitlines() if line.startswith("  ")]
    assert len(reasons) == 12, out
    model_reasons = [r for r in reasons
                     if r in (REASON_LIKE_YOU, REASON_NEW_ARRIVAL) or r.startswith("Because you viewed ")]
    assert model_reasons == reasons, out
    assert REASON_LIKE_YOU in reasons, out
    with cli_env.connect() as conn:  # each has the events the API's Tier 1 asks for
        counts = dict(conn.execute(
            select(UserEvent.user_id, func.count())
            .where(UserEvent.user_id.in_(users), UserEvent.event_type.in_(sorted(COUNTED_EVENTS)))
            .group_by(UserEvent.user_id)).all())
    assert min(counts[u] for u in users) >= get_settings().personalized_min_events

    curl_user = cli("recs", "--sample", "1", "--ids").split()
    assert curl_user == [str(users[0])]
    body = asyncio.run(_recommendations(get_settings(), users[0]))
    assert body["source"] == "personalized" and body["model_version"] == second, body


async def _recommendations(settings, user_id: int) -> dict:
    """The API's answer to the curl `make run` prints (``/recommendations?user_id=...&num_items=5``)."""
    from asgi_client import open_client
    from recsys.api.app import create_app

    client, close = await open_client(create_app(settings, refresh_in_background=False))
    try:
        response = await client.get("/recommendations", params={"user_id": user_id, "num_items": 5})
        assert response.status_code == 200, response.text
        return response.json()
    finally:
        await close()
