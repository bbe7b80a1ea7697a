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


def _print(obj) -> None:
    try:
        print(json.dumps(obj, indent=2, default=str), flush=True)
    except BrokenPipeError:  # `... | head`: the reader has what it wanted, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit


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
    shop = generate_shop(n_users=args.users, n_products=args.products, days=args.days, seed=args.seed, end_date=end)
    _print(load_shop(get_engine(), shop))
    return 0


def cmd_load(args) -> int:
    from recsys.clients import get_engine
    from recsys.data.loaders import read_event_log
    from recsys.data.loading import load_shop

    shop = read_event_log(args.path, fmt=args.format, columns=args.columns)
    _print(load_shop(get_engine(), shop))
    return 0


def cmd_evaluate(args) -> int:
    """Compare every model on one split of a real event log; write JSON, Markdown and PNG curves."""
    from recsys.evaluation.command import evaluate_command

    return evaluate_command(args)


def cmd_models(args) -> int:
    from recsys import registry
    from recsys.clients import get_engine

    engine = get_engine()
    if args.action == "list":
        _print(registry.list_models(engine))
    elif args.action == "promote":
        if not args.model_id:
            print("models promote needs MODEL_ID", file=sys.stderr)
            return 2
        _print(registry.promote(engine, args.model_id, reason="promoted by hand (CLI)"))
        _refresh_recommendations()
    elif args.action == "rollback":
        _print(registry.rollback(engine))
        _refresh_recommendations()
    elif args.action == "candidate":
        return cmd_models_candidate(engine, args.model_id)
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
    from recsys.abtest.impressions import flush_impressions
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


def _refresh_recommendations() -> None:
    """After a manual switch of the LIVE model, recompute every segment's lists with it."""
    from recsys.clients import get_engine, get_redis, get_store
    from recsys.pipeline.precompute import precompute_all

    _print(precompute_all(get_engine(), get_store(), get_redis(), day=None))


def cmd_recs(args) -> int:
    """Print users' cached recommendations with product names and reasons."""
    from sqlalchemy import select

    from recsys.clients import get_engine, get_redis
    from recsys.constants import KEY_RECS
    from recsys.db.models import Product

    redis = get_redis()
    user_ids = list(args.user_ids)
    if not user_ids:
        for key in redis.scan_iter(KEY_RECS.format(user_id="*"), count=1000):
            suffix = key.decode().split(":", 1)[1]
            if suffix.isdigit():
                user_ids.append(int(suffix))
            if len(user_ids) >= args.sample:
                break
    with get_engine().connect() as conn:
        for user_id in user_ids:
            raw = redis.get(KEY_RECS.format(user_id=user_id))
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


def cmd_serve(args) -> int:
    """Run the API under uvicorn: ``create_app`` builds its clients from the settings in each worker."""
    import os

    import uvicorn

    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        print("warning: several workers without PROMETHEUS_MULTIPROC_DIR: /metrics shows one worker's numbers",
              file=sys.stderr)
    uvicorn.run("recsys.api.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, access_log=args.access_log)
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
    gen.set_defaults(func=cmd_generate)

    load = sub.add_parser("load", help="import a real public event log")
    load.add_argument("--format", required=True, choices=["online-retail", "rees46", "csv"])
    load.add_argument("--columns", default=None, help="for csv: user=...,item=...,timestamp=...[,event_type=...]")
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
    ev.add_argument("--protocol", choices=["time", "per-customer"], default="time",
                    help="time: one cut-off for everyone; per-customer: each customer's newest events are the test")
    ev.add_argument("--exclude-seen", default=None,
                    help="purchased, interacted or event types: excluded from candidates and truth "
                         "(default RECSYS_EXCLUDE_SEEN)")
    ev.add_argument("--no-selection", action="store_true", help="skip the model selection table and its auto row")
    ev.add_argument("--selection-metric", default=None, help="default RECSYS_SELECTION_METRIC (ndcg@10)")
    ev.add_argument("--selection-budget", type=float, default=None,
                    help="seconds for the selection on validation (default RECSYS_SELECTION_BUDGET_SECONDS)")
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
    models.add_argument("action", choices=["list", "promote", "rollback", "candidate"])
    models.add_argument("model_id", nargs="?")
    models.set_defaults(func=cmd_models)
    sim = sub.add_parser("simulate", help="drive a running API with simulated shoppers (A/B traffic)")
    sim.add_argument("--users", type=int, default=500, help="simulated shoppers")
    sim.add_argument("--hours", type=float, default=1.0, help="simulated hours of shopping (run compressed)")
    sim.add_argument("--api", default="http://127.0.0.1:8000", help="base URL of the running API")
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
    recs = sub.add_parser("recs", help="show users' cached recommendations with their reasons")
    recs.add_argument("user_ids", nargs="*", type=int)
    recs.add_argument("--sample", type=int, default=3, help="without ids: this many users with cached lists")
    recs.add_argument("--num-items", type=int, default=5)
    recs.set_defaults(func=cmd_recs)
    serve = sub.add_parser("serve", help="run the recommendation API (FastAPI under uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--access-log", action="store_true", help="log every request (off: it costs latency)")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
