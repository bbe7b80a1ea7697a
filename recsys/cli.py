"""``python -m recsys``: the command-line entry point.

Each subcommand parses its arguments and calls one library function; imports
are lazy so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from exc


def _print(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


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

    models = sub.add_parser("models", help="the model registry")
    models.add_argument("action", choices=["list", "promote", "rollback"])
    models.add_argument("model_id", nargs="?")
    models.set_defaults(func=cmd_models)
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
