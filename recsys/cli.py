"""``python -m recsys``: the command-line entry point.

Each subcommand parses its arguments and calls one library function; imports
are lazy so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from exc


def _write(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `... | head`: the reader has what it wanted, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit


def _print(obj) -> None:
    _write(json.dumps(obj, indent=2, default=str))


def model_line(row: dict) -> str:
    """One registry row on one line: id, status, family, version, training day, samples, headline metric of the
    hold-out day (the gate's ``new`` block; ``-`` before evaluation), promotion time."""
    block = (row.get("metrics") or {}).get("new") or {}
    ndcg = block.get("ndcg@10")
    promoted = f"  promoted {str(row['promoted_at'])[:16]}" if row.get("promoted_at") else ""
    return (f"{row['model_id']}  {row['status']:<9}  {row['model_type']:<14}  v{row['version']:<4}  "
            f"trained {row['train_date']}  samples {row['training_samples_count']:<9}  "
            f"ndcg@10 {'-' if ndcg is None else f'{ndcg:.4f}'}{promoted}")


def cmd_db_upgrade(args) -> int:
    from recsys.db.migrate import upgrade
    from recsys.settings import get_settings

    url = get_settings().resolved_database_url
    upgrade(url, args.revision)
    print(f"database at revision {args.revision}: {url.split('@')[-1]}")
    return 0


def cmd_generate(args) -> int:
    from recsys.clients import get_engine
    from recsys.data.loading import load_shop
    from recsys.data.synthetic import generate_shop

    end = args.end_date or (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1))
    if args.burst_days is not None and args.burst_days < 1:
        print(f"generate: --burst-days must be >= 1, got {args.burst_days}", file=sys.stderr)
        return 2
    shop = generate_shop(n_users=args.users, n_products=args.products, days=args.days, seed=args.seed, end_date=end,
                         burst_days=args.burst_days)
    _print(load_shop(get_engine(), shop))
    return 0


def cmd_load(args) -> int:
    """Read the whole log, then load its acceptable rows; a bad file is one line on stderr and exit 2."""
    from recsys.clients import get_engine
    from recsys.data.loaders import read_checked
    from recsys.data.loading import load_shop
    from recsys.settings import get_settings

    try:
        shop, report = read_checked(args.path, fmt=args.format, columns=args.columns,
                                    timestamp_unit=args.timestamp_unit,
                                    skew_ms=get_settings().event_clock_skew_seconds * 1000)
    except (ValueError, OSError) as exc:  # EventLogError names the file; a bad mapping or path says what
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.strict and report.rows_rejected:
        _print({"loaded": False, "report": report.as_dict()})
        print(f"error: {args.path}: --strict: {report.summary()}; nothing loaded", file=sys.stderr)
        return 2
    if report.rows_rejected:
        print(f"warning: {args.path}: {report.summary()}", file=sys.stderr)
    _print({**load_shop(get_engine(), shop), "report": report.as_dict()})
    return 0


def cmd_evaluate(args) -> int:
    """Compare every model on one split of a real event log; write JSON, Markdown and PNG curves."""
    from recsys.evaluation.command import evaluate_command

    return evaluate_command(args)


def cmd_models(args) -> int:
    from recsys import registry
    from recsys.clients import get_engine
    from recsys.integrity import ArtifactIntegrityError
    from recsys.families.files import ModelArtifactError
    from recsys.pipeline.precompute import PrecomputeError

    if args.action == "convert-legacy" and args.model_id and Path(args.model_id).is_file():
        return cmd_convert_legacy_file(Path(args.model_id), args.out)  # on a machine without the stores
    engine = get_engine()
    if args.action == "candidate":
        return cmd_models_candidate(engine, args.model_id)
    if args.action == "compare":
        return cmd_models_compare(engine, args.model_id, args.other_id, as_json=args.json)
    if args.action in ("promote", "prepare", "trust", "convert-legacy") and not args.model_id:
        print(f"models {args.action} needs MODEL_ID", file=sys.stderr)
        return 2
    try:
        return _models_action(engine, args)
    except (registry.RegistryError, ArtifactIntegrityError, ModelArtifactError, PrecomputeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def cmd_convert_legacy_file(path: Path, out: str | None) -> int:
    """A ``model.pkl`` outside the artifact store: ``model.npz`` + ``model.json`` beside it (or in ``--out``)."""
    from recsys.artifacts import sha256_file
    from recsys.families.files import ModelArtifactError
    from recsys.families.hybrid.legacy_pickle import convert_file

    try:
        written = convert_file(path, Path(out) if out else None)
    except (ModelArtifactError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print({"written": {name: str(p) for name, p in written.items()},
            "sha256": {name: sha256_file(p) for name, p in written.items()}})
    return 0


def _models_action(engine, args) -> int:
    """list / history / verify / trust / convert-legacy / promote / rollback (promote and rollback: verify,
    precompute, switch)."""
    from recsys import registry
    from recsys.clients import get_redis, get_store
    from recsys.pipeline import rollout
    from recsys.settings import get_settings

    if args.action == "list":
        rows = registry.list_models(engine)
        if args.json:
            _print(rows)
        else:
            if rows:
                _write("\n".join(model_line(row) for row in rows))
            else:
                print("no model in the registry yet", file=sys.stderr)
    elif args.action == "history":
        _print(registry.promotion_history(engine))
    elif args.action == "verify":
        report = rollout.verify_model(engine, get_store(), args.model_id)
        _print(report)
        for name, state in report["files"].items():
            if state != "ok":
                print(f"model {report['model_id']}: {name}: {state}", file=sys.stderr)
        return 0 if report["ok"] else 1
    elif args.action == "trust":
        _print(rollout.trust_model(engine, get_store(), args.model_id))
    elif args.action == "convert-legacy":
        _print(rollout.convert_legacy(engine, get_store(), args.model_id))
    elif args.action == "promote":
        _print(rollout.promote_live(engine, get_store(), get_redis(), args.model_id, reason="promoted by hand (CLI)",
                                    settings=get_settings()))
    elif args.action == "prepare":
        from recsys.pipeline.release import prepare_arm

        _print(prepare_arm(engine, get_store(), get_redis(), args.model_id, get_settings()))
    elif args.action == "rollback":
        _print(rollout.rollback_live(engine, get_store(), get_redis(), get_settings()))
    return 0


def cmd_models_compare(engine, a_id: str | None, b_id: str | None, as_json: bool = False) -> int:
    """Two registry rows side by side: params, training window, samples, validation metrics, B - A."""
    from recsys import registry
    from recsys.evaluation.compare import compare_rows, format_table

    if not a_id or not b_id:
        print("models compare needs two MODEL_IDs: models compare A B", file=sys.stderr)
        return 2
    try:
        a, b = (registry.model_to_dict(registry.get_model(engine, m)) for m in (a_id, b_id))
    except registry.UnknownModelError as exc:
        print(f"error: {exc} (python -m recsys models list shows the known ids)", file=sys.stderr)
        return 2
    rows = compare_rows(a, b)
    if as_json:
        _print([{"field": f, "a": x, "b": y, "b_minus_a": d} for f, x, y, d in rows])
    else:
        print(format_table(rows, a_id, b_id), flush=True)
    return 0


def cmd_models_candidate(engine, model_id: str | None) -> int:
    """Mark a trained model as a CANDIDATE for an A/B test (archived models cannot enter one)."""
    from recsys import registry
    from recsys.constants import STATUS_ARCHIVED

    if not model_id:
        print("models candidate needs MODEL_ID", file=sys.stderr)
        return 2
    try:
        row = registry.get_model(engine, model_id)
        if row.status == STATUS_ARCHIVED:
            raise registry.RegistryError(f"model {model_id!r} is ARCHIVED: archived models cannot enter a test")
        _print(registry.mark_candidate(engine, model_id, reason="marked as A/B candidate by hand (CLI)"))
    except registry.RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_simulate(args) -> int:
    """Drive a running API with simulated shoppers of the synthetic shop (A/B traffic)."""
    from recsys.lab.simulate import simulate_command

    return simulate_command(args)


FOLLOW_BATCHES = 50  # --follow: batches per pass, so that the heartbeat moves under a steady stream too


def cmd_impressions_flush(args) -> int:
    """Move logged impressions from the Redis stream into the database (``--follow``: keep going,
    touching ``--heartbeat`` after every pass so that a health check can tell a stuck flusher)."""
    from recsys.abtest.flusher import flush_impressions
    from recsys.clients import get_engine, get_redis

    heartbeat = Path(args.heartbeat) if args.heartbeat else None
    while True:
        done = flush_impressions(get_engine(), get_redis(), consumer=args.consumer,
                                 block_ms=1000 if args.follow else None,
                                 max_batches=FOLLOW_BATCHES if args.follow else None)
        if heartbeat is not None:
            heartbeat.touch()
        if not args.follow:
            _print(done)
            return 0


def cmd_dead_letters(args) -> int:
    """Impression entries the flusher set aside (``impression_dead_letters``): list, replay after a fix, discard."""
    from recsys.abtest.dead_letters import dead_letters_command

    return dead_letters_command(args, _print)


def personalised_users(engine, redis, min_events: int, limit: int) -> list[int]:
    """The first ``limit`` users (by id) the API answers from their own list: a cached ``recs:{user}`` and at least
    ``min_events`` counted events (``RECSYS_PERSONALIZED_MIN_EVENTS``; impressions do not count)."""
    from sqlalchemy import func, select

    from recsys.db.models import UserEvent
    from recsys.keys import recs_key
    from recsys.serving.session_state import COUNTED_EVENTS

    if limit < 1:
        return []
    query = (select(UserEvent.user_id).where(UserEvent.event_type.in_(sorted(COUNTED_EVENTS)))
             .group_by(UserEvent.user_id).having(func.count() >= min_events).order_by(UserEvent.user_id))
    found: list[int] = []
    with engine.connect() as conn:
        qualified = [int(u) for u in conn.execute(query).scalars()]
    for start in range(0, len(qualified), 500):  # one pipelined EXISTS per 500 users
        batch = qualified[start:start + 500]
        pipe = redis.pipeline(transaction=False)
        for user_id in batch:
            pipe.exists(recs_key(user_id))
        found += [u for u, cached in zip(batch, pipe.execute()) if cached]
        if len(found) >= limit:
            break
    return found[:limit]


def cmd_recs(args) -> int:
    """Print users' cached recommendations with product names and reasons (without ids: ``--sample`` users the API
    personalises; ``--ids``: their ids only, one a line)."""
    from sqlalchemy import select

    from recsys.clients import get_engine, get_redis
    from recsys.db.models import Product
    from recsys.keys import recs_key
    from recsys.settings import get_settings

    if args.sample < 1 or args.num_items < 1:
        print("--sample and --num-items must be at least 1", file=sys.stderr)
        return 2
    engine, redis = get_engine(), get_redis()
    user_ids = list(args.user_ids)
    if not user_ids:
        min_events = get_settings().personalized_min_events
        user_ids = personalised_users(engine, redis, min_events, args.sample)
        if not user_ids:  # not an error: a shop before its first nightly run
            print(f"no user has a cached list and {min_events} events yet (run the nightly DAG first): the API "
                  "serves the fallback tiers", file=sys.stderr if args.ids else sys.stdout)
            return 0
    if args.ids:
        print("\n".join(str(u) for u in user_ids))
        return 0
    with engine.connect() as conn:
        for user_id in user_ids:
            raw = redis.get(recs_key(user_id))
            if raw is None:
                print(f"user {user_id}: no cached recommendations (the API serves the fallback tiers)")
                continue
            recs = json.loads(raw)
            ids = recs["products"][: args.num_items]
            names = dict(conn.execute(select(Product.product_id, Product.name).where(Product.product_id.in_(ids))).all())
            print(f"user {user_id} (model {recs['model_version']}):")
            for pid, score, reason in zip(ids, recs["scores"], recs["reasons"]):
                print(f"  {pid:>8}  {score:8.3f}  {names.get(pid, '?')[:40]:<40}  {reason}")
    return 0


def serve_log_config(access_log: bool) -> dict:
    """uvicorn's logging, with the API's own request line (``recsys.api.middleware``: method, path, status,
    latency, API key name, request ids) in place of uvicorn's access log when ``access_log``."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["recsys.api.middleware"] = {"handlers": ["default"], "propagate": False,
                                                  "level": "INFO" if access_log else "WARNING"}
    return config


def cmd_serve(args) -> int:
    """Run the API under uvicorn: ``create_app`` builds its clients from the settings in each worker."""
    import os

    import uvicorn

    from recsys.settings import get_settings

    get_settings().check_api()  # a bad setting is one line here (``main``), not a traceback per worker
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        print("warning: several workers without PROMETHEUS_MULTIPROC_DIR: /metrics shows one worker's numbers",
              file=sys.stderr)
    uvicorn.run("recsys.api.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, access_log=False,
                log_config=serve_log_config(args.access_log))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recsys", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema (Alembic)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)

    gen = sub.add_parser("generate", help="generate and load a synthetic shop")
    gen.add_argument("--users", type=int, default=5000)
    gen.add_argument("--products", type=int, default=1000)
    gen.add_argument("--days", type=int, default=30)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--end-date", type=_date, default=None, help="last day of events (default: yesterday, UTC)")
    gen.add_argument("--burst-days", type=int, default=None,
                     help="each user active in one burst of this many days (default: over the whole period)")
    gen.set_defaults(func=cmd_generate)

    load = sub.add_parser("load", help="import a real public event log")
    load.add_argument("--format", required=True, choices=["online-retail", "rees46", "csv"])
    load.add_argument("--columns", default=None, help="for csv: user=...,item=...,timestamp=...[,event_type=...]")
    load.add_argument("--timestamp-unit", choices=["s", "ms", "us", "ns"], default=None,
                      help="unit of epoch-number timestamps (default: detected per file from their magnitude)")
    load.add_argument("--strict", action="store_true",
                      help="any rejected row (unknown type, negative price, future time) fails the load: nothing loaded")
    load.add_argument("path")
    load.set_defaults(func=cmd_load)

    ev = sub.add_parser("evaluate", help="offline evaluation on a real event log against baselines")
    ev.add_argument("--dataset", required=True, help="event log (CSV or Parquet)")
    ev.add_argument("--format", required=True, choices=["online-retail", "rees46", "csv"])
    ev.add_argument("--columns", default=None, help="for csv: user=...,item=...,timestamp=...[,event_type=...]")
    split = ev.add_mutually_exclusive_group()
    split.add_argument("--split-date", default=None, help="train before this date (or ISO date-time, UTC), test after")
    split.add_argument("--test-days", type=int, default=None, help="the last N days are the test")
    split.add_argument("--test-file", default=None, help="a second log in the same format is the test set")
    split.add_argument("--test-fraction", type=float, default=None,
                       help="time split: the newest fraction of events (default 0.2); per-customer: of each "
                            "customer's positive events")
    ev.add_argument("--protocol", choices=["time", "per-customer", "basket"], default="time",
                    help="time: one cut-off for everyone; per-customer: each customer's newest events are the test; "
                         "basket: hide one product of each test order, rank it from the others (frequently "
                         "bought together, item-kNN's similar items, popularity; --models picks among them)")
    ev.add_argument("--exclude-seen", default=None,
                    help="purchased, interacted or event types: excluded from candidates and truth "
                         "(default RECSYS_EXCLUDE_SEEN)")
    ev.add_argument("--no-selection", action="store_true", help="skip the model selection table and its auto row")
    ev.add_argument("--selection-metric", default=None, help="default RECSYS_SELECTION_METRIC (ndcg@10)")
    ev.add_argument("--selection-budget", type=float, default=None,
                    help="seconds for the selection on validation (default RECSYS_SELECTION_BUDGET_SECONDS)")
    ev.add_argument("--selection-min-users", type=int, default=None,
                    help="users the selection's validation split should hold (default RECSYS_SELECTION_MIN_USERS)")
    ev.add_argument("--k", type=int, default=10)
    ev.add_argument("--json", default=None, help="result file (default bench/results/<dataset>.json)")
    ev.add_argument("--models", default=None, help="comma-separated subset (default: all)")
    ev.add_argument("--positive-events", default=None, help="test events that count as relevant, e.g. PURCHASE")
    ev.add_argument("--cold-max-items", type=int, default=10, help="cold users: at most this many training products")
    ev.add_argument("--train-days", type=int, default=None, help="training window before the cut-off (default: all)")
    ev.add_argument("--hybrid-config", default=None, help="JSON of a hybrid configuration (e.g. a tuned result)")
    ev.add_argument("--tune", action="store_true", help="tune the hybrid on a validation split first")
    ev.add_argument("--tune-minutes", type=float, default=15.0, help="time box of --tune")
    ev.add_argument("--seed", type=int, default=None, help="default: RECSYS_SEED")
    ev.add_argument("--threads", type=int, default=None, help="LightFM threads (1: bit-identical reruns)")
    ev.add_argument("--no-plots", action="store_true")
    ev.add_argument("--quiet", action="store_true", help="no progress bars or logs")
    ev.set_defaults(func=cmd_evaluate)

    models = sub.add_parser("models", help="the model registry")
    models.add_argument("action", choices=["list", "history", "verify", "trust", "convert-legacy", "promote",
                                           "rollback", "prepare", "candidate", "compare"],
                        help="verify [MODEL_ID]: check the files' SHA-256 (default the LIVE model); promote MODEL_ID / "
                             "rollback: verify, publish, write its lists, then switch the LIVE model; prepare MODEL_ID: "
                             "make a model ready to serve an A/B arm (verify, publish, its lists in its own keys); "
                             "trust MODEL_ID: "
                             "record the checksums of a model registered before checksums existed (never a model.pkl); "
                             "convert-legacy MODEL_ID|PATH: on a trusted machine, turn an earlier version's pickled "
                             "model.pkl into model.npz + model.json (the store's copy: recorded, pickle removed; a "
                             "file: written beside it or in --out); compare A B: two models side by side")
    models.add_argument("model_id", nargs="?")
    models.add_argument("other_id", nargs="?", help="compare: the second model (B)")
    models.add_argument("--json", action="store_true",
                        help="list, compare: the full rows as JSON (list without it: one line per model)")
    models.add_argument("--out", default=None, help="convert-legacy PATH: the folder of model.npz + model.json")
    models.set_defaults(func=cmd_models)
    sim = sub.add_parser("simulate", help="drive a running API with simulated shoppers (A/B traffic)")
    sim.add_argument("--users", type=int, default=500, help="simulated shoppers")
    sim.add_argument("--hours", type=float, default=1.0, help="simulated hours of shopping (run compressed)")
    sim.add_argument("--api", default="http://127.0.0.1:8000", help="base URL of the running API")
    sim.add_argument("--api-key", default=os.environ.get("RECSYS_CLIENT_API_KEY"),
                     help="a key of the API's RECSYS_API_KEYS (default $RECSYS_CLIENT_API_KEY)")
    sim.add_argument("--visits-per-hour", type=float, default=2.0, help="mean visits of a shopper per hour")
    sim.add_argument("--num-items", type=int, default=10, help="items asked per recommendation request")
    sim.add_argument("--concurrency", type=int, default=16, help="shoppers in flight at once")
    sim.add_argument("--seed", type=int, default=7, help="seed of the simulation (shoppers, clicks)")
    sim.add_argument("--shop-users", type=int, default=5000, help="the synthetic shop: as `generate --users`")
    sim.add_argument("--shop-products", type=int, default=1000, help="as `generate --products`")
    sim.add_argument("--shop-days", type=int, default=30, help="as `generate --days`")
    sim.add_argument("--shop-seed", type=int, default=42, help="as `generate --seed`")
    sim.add_argument("--shop-end-date", type=_date, default=None, help="as `generate --end-date` (default yesterday)")
    sim.add_argument("--json", default=None, help="write the summary here too")
    sim.set_defaults(func=cmd_simulate)
    imp = sub.add_parser("impressions", help="the impression log (Redis stream -> database)")
    imp_sub = imp.add_subparsers(dest="impressions_command", required=True)
    flush = imp_sub.add_parser("flush", help="write the logged impressions to the database")
    flush.add_argument("--follow", action="store_true", help="keep flushing (the background flusher role)")
    flush.add_argument("--consumer", default="cli", help="consumer name in the stream's group (one per process)")
    flush.add_argument("--heartbeat", default=None, help="touch this file after every pass (for a health check)")
    flush.set_defaults(func=cmd_impressions_flush)
    dead = imp_sub.add_parser("dead-letters", help="entries the flusher could not write: list, replay, discard",
                              description="replay exits 1 while some entries are still refused (they stay, with "
                                          "their new reason)")
    dead.add_argument("action", choices=["list", "replay", "discard"])
    dead.add_argument("ids", nargs="*", help="stream ids (default for list: all)")
    dead.add_argument("--all", action="store_true", help="replay or discard every dead letter")
    dead.add_argument("--limit", type=int, default=100, help="list: at most this many entries")
    dead.set_defaults(func=cmd_dead_letters)
    recs = sub.add_parser("recs", help="show users' cached recommendations with their reasons")
    recs.add_argument("user_ids", nargs="*", type=int)
    recs.add_argument("--sample", type=int, default=3,
                      help="without ids: this many users the API personalises (a cached list and "
                           "RECSYS_PERSONALIZED_MIN_EVENTS events), lowest ids first")
    recs.add_argument("--num-items", type=int, default=5)
    recs.add_argument("--ids", action="store_true", help="print the users' ids only, one a line")
    recs.set_defaults(func=cmd_recs)
    serve = sub.add_parser("serve", help="run the recommendation API (FastAPI under uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--access-log", action="store_true", help="log every request with its API key name (off: it costs latency)")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a settings error is one ``error:`` line naming the variable (never its value), exit 2."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from recsys.settings import ConfigurationError, Settings, settings_error_message

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValidationError, SettingsError, ConfigurationError) as exc:
        if isinstance(exc, ValidationError) and exc.title != Settings.__name__:
            raise  # another model's validation: a bug, with its traceback
        print(f"error: {settings_error_message(exc)}", file=sys.stderr)
        return 2
