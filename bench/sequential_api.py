"""The sequential model's real-time path through the API, in process: a cache hit, and the re-score after a click.

``prepare_shop`` loads a synthetic shop (``generate_shop``: ``users`` users, ``products`` products,
30 days ending yesterday) into a benchmark database, registers a synthetic sequential model over
its whole catalogue (``bench.sequential_synthetic``: the production shape, untrained weights; its
files uploaded and recorded with their checksums as training does), promotes and publishes it, and
precomputes every active user's list (with the key of the sequence it was made for).

``measure_realtime`` runs the real app (``create_app``, lifespan entered: the runtime loaded and
verified by the model refresh) and times the route's call, ``respond(user_id, 10)``, as the serving
benchmark's profile does (``bench.serving_profile``), for users with a precomputed list, alternately:
- ``hit``: the user's sequence is unchanged since the cached list: no model may run. In the first
  round the session was seeded before precompute wrote the final answers, so the hit is sent from
  ``answer:{user}`` (``hit_answer``); in later rounds the list the last re-score wrote is re-ranked
  (``hit_list``: real-time scoring writes the list back, not a final answer);
- ``changed``: right after ``POST /events/click`` through the app (not timed) on a product the
  session's sequence does not start with: the ONNX encoder runs once and the list is written back.
Each call's wall time and the thread's CPU time (the event loop, onnxruntime and BLAS all run on the
calling thread); the encoder runs (``recsys.families.sequential.scoring.encode``) and model loads
(``load_runtime``) during each call are counted, and a call of the wrong kind raises
(``WrongPathError``): the benchmark cannot measure another path than it says.

``measure_hybrid_hits``: for reference, the cache hits of the same users after a hybrid model of
the same shop is trained, promoted, published and precomputed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import orjson

from bench.common import API_ENV, API_KEY_HEADERS, percentiles
from bench.sequential_synthetic import export_synthetic
from bench.serving_profile import route_call, running_app
from bench.serving_users import event_counts

K = 10


class WrongPathError(RuntimeError):
    """A measured call did not take the path it was measured for (a model run on a hit, or none after a click)."""


def api_settings(database_url: str, redis_url: str, artifact_uri: str, **overrides):
    """The settings of the measured app: the benchmark's API key, its rate limit never reached."""
    from recsys.settings import Settings

    return Settings(database_url=database_url, redis_url=redis_url, artifact_uri=artifact_uri,
                    api_keys=[API_ENV["RECSYS_API_KEYS"]],
                    rate_limit_per_second=float(API_ENV["RECSYS_RATE_LIMIT_PER_SECOND"]),
                    rate_limit_burst=int(API_ENV["RECSYS_RATE_LIMIT_BURST"]), **overrides)


def register_synthetic(engine, store, day: dt.date, seed: int) -> str:
    """A synthetic sequential model over the database's catalogue, registered with its files' checksums."""
    from ulid import ULID

    from recsys import registry
    from recsys.artifacts import model_key
    from recsys.families.sequential import MODEL_TYPE_SEQUENTIAL
    from recsys.data.frames import load_products
    from recsys.families.sequential.config import CONFIG_FILE, SequentialConfig
    from recsys.families.sequential.store import upload_folder

    catalogue = load_products(engine)
    model_id = str(ULID())
    with tempfile.TemporaryDirectory(prefix="bench-sequential-api-") as tmp:
        checksums = upload_folder(store, model_id, export_synthetic(catalogue, Path(tmp) / model_id, seed))
    registry.register_model(engine, model_id=model_id, model_type=MODEL_TYPE_SEQUENTIAL, train_date=day,
                            params={"synthetic": "untrained weights (bench.sequential_synthetic)",
                                    **SequentialConfig(seed=seed).as_dict()},
                            samples=0, artifact_uri=store.uri(model_key(model_id, CONFIG_FILE)), artifacts=checksums)
    return model_id


def prepare_shop(database_url: str, redis_client, settings, *, users: int, products: int, seed: int) -> dict:
    """The shop loaded and a LIVE synthetic sequential model published and precomputed; each step timed."""
    from recsys import registry
    from recsys.clients import get_store, make_engine
    from recsys.data.loading import load_shop
    from recsys.data.synthetic import generate_shop
    from recsys.pipeline.precompute import precompute_all
    from recsys.pipeline.publish import publish_model

    engine, store = make_engine(database_url), get_store(settings)
    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    secs: dict[str, float] = {}

    def step(name: str, fn: Callable):
        start = time.perf_counter()
        out = fn()
        secs[name] = round(time.perf_counter() - start, 2)
        return out

    shop = step("generate", lambda: generate_shop(n_users=users, n_products=products, days=30, seed=seed,
                                                  end_date=day))
    step("load", lambda: load_shop(engine, shop))
    model_id = step("synthetic_model", lambda: register_synthetic(engine, store, day, seed))
    step("promote_publish", lambda: (registry.promote(engine, model_id, reason="benchmark: synthetic sequential"),
                                     publish_model(engine, store, model_id)))
    step("precompute", lambda: precompute_all(engine, store, redis_client, day, settings=settings))
    counts = event_counts(engine)
    engine.dispose()
    return {"model_id": model_id, "day": day.isoformat(), "users": users, "products": products,
            "events": len(shop.events), "event_counts": counts, "seconds": secs}


def personalized_users(shop: dict, redis_client, min_events: int, n: int) -> list[int]:
    """Up to ``n`` users with ``min_events`` events and a precomputed list, most events first."""
    from recsys.keys import recs_key

    counts = shop["event_counts"]
    heavy = sorted((u for u, c in counts.items() if c >= min_events), key=lambda u: (-counts[u], u))
    return [u for u in heavy if redis_client.exists(recs_key(u))][:n]


@contextlib.contextmanager
def counted(module, name: str, counter: list[int]):
    """``module.name`` replaced by a wrapper that adds 1 to ``counter[0]`` per call."""
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        counter[0] += 1
        return real(*args, **kwargs)

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, real)


class Probe:
    """Times the route's call and counts what ran during it: encoder runs, model loads, cached answers sent."""

    def __init__(self, app):
        self.call = route_call(app)
        self.encodes, self.loads, self.answers = [0], [0], [0]
        rec = app.state.recommender
        real_send = rec._send_answer

        def send(*args, **kwargs):  # the instance's method: only this app's cached answers are counted
            self.answers[0] += 1
            return real_send(*args, **kwargs)

        rec._send_answer = send
        self.records: list[dict] = []

    async def timed(self, kind: str, user_id: int) -> dict:
        before = (self.encodes[0], self.loads[0], self.answers[0])
        wall, cpu = time.perf_counter(), time.thread_time()
        body = await self.call(user_id, K)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        answer = orjson.loads(body)
        rec = {"kind": kind, "user_id": user_id, "wall_s": wall, "cpu_s": cpu,
               "encoder_runs": self.encodes[0] - before[0], "model_loads": self.loads[0] - before[1],
               "from_answer": self.answers[0] - before[2] == 1, "source": answer["source"],
               "model_version": answer["model_version"]}
        self.records.append(rec)
        return rec


@contextlib.contextmanager
def probing(app):
    """A ``Probe`` of ``app`` with the encoder runs and model loads counted while it is open."""
    from recsys.families.sequential import scoring

    probe = Probe(app)
    with counted(scoring, "encode", probe.encodes), counted(scoring, "load_runtime", probe.loads):
        yield probe


def check_path(rec: dict, model_id: str) -> None:
    """``WrongPathError`` unless the call was Tier 1 of ``model_id`` with the encoder runs its kind allows."""
    runs = 1 if rec["kind"] == "changed" else 0
    if rec["source"] != "personalized" or rec["model_version"] != model_id:
        raise WrongPathError(f"user {rec['user_id']}: {rec['kind']} answered by {rec['source']} / "
                             f"{rec['model_version']}, not Tier 1 of {model_id}")
    if rec["encoder_runs"] != runs or rec["model_loads"]:
        raise WrongPathError(f"user {rec['user_id']}: {rec['kind']} ran the encoder {rec['encoder_runs']} times "
                             f"(expected {runs}) and loaded the model {rec['model_loads']} times")


def front_of_sequence(redis_client, user_id: int) -> int | None:
    from recsys.serving.session_state import parse_session
    from recsys.keys import session_key

    seq = parse_session(redis_client.hgetall(session_key(user_id))).sequence
    return seq[0] if seq else None


async def _warm_up(settings, users: list[int]) -> None:
    """One request per user: the session is seeded from the database (as on a user's first request)."""
    async with running_app(settings) as app:
        call = route_call(app)
        for uid in users:
            await call(uid, K)


async def _alternate(settings, redis_client, model_id: str, users: list[int], rounds: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    async with running_app(settings) as app:
        catalogue = np.asarray(sorted(app.state.serving.catalog.products), dtype=np.int64)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                   headers=API_KEY_HEADERS)
        with probing(app) as probe:
            try:
                for _ in range(rounds):
                    for uid in users:
                        check_path(await probe.timed("hit", uid), model_id)
                        front = front_of_sequence(redis_client, uid)
                        product = int(rng.choice(catalogue))
                        while product == front:
                            product = int(rng.choice(catalogue))
                        r = await client.post("/events/click", json={"user_id": uid, "product_id": product,
                                                                    "timestamp": int(time.time() * 1000)})
                        if r.status_code != 200 or r.json().get("status") != "logged":
                            raise WrongPathError(f"click of user {uid} not logged: {r.status_code} {r.text}")
                        check_path(await probe.timed("changed", uid), model_id)
            finally:
                await client.aclose()
    return probe.records


def summarise(records: list[dict]) -> dict:
    """Latency (wall and CPU) and the counters of each kind of call."""
    groups = {"hit": [r for r in records if r["kind"] == "hit"],
              "hit_answer": [r for r in records if r["kind"] == "hit" and r["from_answer"]],
              "hit_list": [r for r in records if r["kind"] == "hit" and not r["from_answer"]],
              "changed": [r for r in records if r["kind"] == "changed"],
              "hybrid_hit": [r for r in records if r["kind"] == "hybrid_hit"]}
    out = {}
    for name, rows in groups.items():
        if not rows:
            continue
        cpu = percentiles([r["cpu_s"] for r in rows])
        out[name] = {**percentiles([r["wall_s"] for r in rows]),
                     **{"cpu_" + k: v for k, v in cpu.items() if k != "n"},
                     "first_ms": rows[0]["wall_s"] * 1e3, "max_ms": max(r["wall_s"] for r in rows) * 1e3,
                     "encoder_runs": {"total": sum(r["encoder_runs"] for r in rows),
                                      "min": min(r["encoder_runs"] for r in rows),
                                      "max": max(r["encoder_runs"] for r in rows)},
                     "model_loads": sum(r["model_loads"] for r in rows),
                     "from_cached_answer": sum(r["from_answer"] for r in rows)}
    return out


def measure_realtime(settings, redis_client, shop: dict, *, users: int, rounds: int, seed: int) -> list[dict]:
    """``rounds`` x (hit, click, changed) for ``users`` users: the records of every timed call."""
    from recsys.clients import get_store, make_engine
    from recsys.pipeline.precompute import precompute_all

    chosen = personalized_users(shop, redis_client, settings.personalized_min_events, users)
    if not chosen:
        raise WrongPathError(f"no user with {settings.personalized_min_events} events and a precomputed list")
    asyncio.run(_warm_up(settings, chosen))
    engine = make_engine(settings.database_url)  # again, now that sessions exist: the final answers too
    precompute_all(engine, get_store(settings), redis_client, dt.date.fromisoformat(shop["day"]), settings=settings)
    engine.dispose()
    return asyncio.run(_alternate(settings, redis_client, shop["model_id"], chosen, rounds, seed))


async def _hybrid_hits(settings, model_id: str, users: list[int], rounds: int) -> list[dict]:
    async with running_app(settings) as app:
        with probing(app) as probe:
            for _ in range(rounds):
                for uid in users:
                    check_path(await probe.timed("hybrid_hit", uid), model_id)
    return probe.records


def measure_hybrid_hits(settings, redis_client, shop: dict, users: list[int], rounds: int,
                        seed: int) -> tuple[list[dict], dict]:
    """A hybrid model trained on the same shop, LIVE and precomputed; the cache hits of ``users``."""
    from recsys import registry
    from recsys.clients import get_store, make_engine
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model
    from recsys.pipeline.precompute import precompute_all
    from recsys.pipeline.publish import publish_model

    engine, store = make_engine(settings.database_url), get_store(settings)
    day = dt.date.fromisoformat(shop["day"])
    start = time.perf_counter()
    model_id = train_model(engine, store, day + dt.timedelta(days=1),
                           TrainParams(window_days=30, epochs=5, seed=seed))["model_id"]
    registry.promote(engine, model_id, reason="benchmark: hybrid reference")
    publish_model(engine, store, model_id)
    precompute_all(engine, store, redis_client, day, settings=settings)
    engine.dispose()
    setup = {"model_id": model_id, "seconds": round(time.perf_counter() - start, 2)}
    return asyncio.run(_hybrid_hits(settings, model_id, users, rounds)), setup


def api_latency(settings, redis_client, *, products: int, shop_users: int, users: int, rounds: int, hybrid: bool,
                seed: int) -> dict:
    """The whole measurement on the database and Redis of ``settings`` (both emptied by the caller)."""
    shop = prepare_shop(settings.database_url, redis_client, settings, users=shop_users, products=products, seed=seed)
    records = measure_realtime(settings, redis_client, shop, users=users, rounds=rounds, seed=seed)
    chosen = list(dict.fromkeys(r["user_id"] for r in records))
    reference = None
    if hybrid:
        hits, setup = measure_hybrid_hits(settings, redis_client, shop, chosen, rounds, seed)
        records += hits
        reference = {**setup, "trained": "LightFM hybrid, 5 epochs, on the same shop's 30 days"}
    return {"products": products, "users": len(chosen), "rounds": rounds, "route": "respond(user_id, 10)",
            "synthetic": "shop from generate_shop; sequential model untrained (bench.sequential_synthetic), "
                         "production shape, registered LIVE with its files' checksums",
            "shop": {k: v for k, v in shop.items() if k != "event_counts"},
            "personalized_min_events": settings.personalized_min_events, "hybrid": reference,
            "calls": summarise(records)}


def run(*, database: str, products: int, shop_users: int, users: int, rounds: int, hybrid: bool,
        seed: int) -> dict:
    """``api_latency`` in a throw-away database ``recsys_bench_<database>`` and the benchmark's Redis database."""
    from bench.fixtures import REDIS_URL, bench_database, bench_redis

    with tempfile.TemporaryDirectory(prefix="bench-sequential-api-") as tmp, bench_database(database) as url, \
            bench_redis() as redis_client:
        settings = api_settings(url, REDIS_URL, f"{tmp}/artifacts", var_dir=Path(tmp) / "var")
        return api_latency(settings, redis_client, products=products, shop_users=shop_users, users=users,
                           rounds=rounds, hybrid=hybrid, seed=seed)
