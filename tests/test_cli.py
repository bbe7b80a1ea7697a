"""python -m recsys: the command line against the real PostgreSQL and Redis."""

from __future__ import annotations

import json
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


def test_rollback_restores_the_previous_model_and_its_recommendations(cli_env, redis_client, capsys):
    from recsys import registry
    from recsys.cli import main
    from recsys.clients import get_store
    from recsys.model.train import TrainParams, train_model

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
    assert main(["models", "list"]) == 0
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


def test_models_verify_and_a_refused_rollback_through_the_cli(cli_env, redis_client):
    """``models verify`` exits 1 naming each bad file; ``models rollback`` to a model with a deleted file
    is refused with the file named and the LIVE model unchanged."""
    from recsys import registry
    from recsys.artifacts import model_key
    from recsys.clients import get_store
    from recsys.model.train import TrainParams, train_model
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
