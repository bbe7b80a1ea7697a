"""``python -m recsys load`` as a user runs it (a subprocess) against the real PostgreSQL: bad rows are
rejected and counted, ``--strict`` loads nothing, the timestamp unit is detected per file, a bad file
is one line on stderr and exit code 2."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from recsys.db.models import UserEvent

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc)
FUTURE = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)
MAPPING = "user=u,item=i,timestamp=t,event_type=kind,price=p"


def rows(n: int = 4) -> list[dict]:
    return [{"u": 1 + k % 2, "i": 10 + k, "t": int(DAY.timestamp()) + 60 * k, "kind": "view", "p": 5.0}
            for k in range(n)]


def write(tmp_path: Path, data: list[dict], name: str = "log.csv") -> Path:
    path = tmp_path / name
    frame = pd.DataFrame(data)
    frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    return path


def run_load(engine, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RECSYS_DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "recsys", "load", *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=ROOT)


def events(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(select(UserEvent.product_id, UserEvent.timestamp, UserEvent.price)
                            .order_by(UserEvent.product_id)).all()


def test_bad_rows_are_rejected_counted_and_the_rest_loaded(engine, tmp_path):
    data = rows(4) + [
        {"u": 1, "i": 90, "t": int(DAY.timestamp()), "kind": "purchase", "p": -3.0},
        {"u": 2, "i": 91, "t": int(FUTURE.timestamp()), "kind": "view", "p": 1.0},
        {"u": 2, "i": 92, "t": int(DAY.timestamp()), "kind": "teleport", "p": 1.0},
    ]
    done = run_load(engine, "--format", "csv", "--columns", MAPPING, str(write(tmp_path, data)))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["events"] == 4
    report = out["report"]
    assert report["rows"] == 7 and report["rows_rejected"] == 3 and report["timestamp_unit"] == "s"
    assert report["rejected"] == {"unknown_event_type": 1, "negative_price": 1, "future_timestamp": 1}
    assert report["examples"]["unknown_event_type"] == ["teleport"]
    assert "3 of 7 row(s) rejected" in done.stderr
    assert [p for p, _, _ in events(engine)] == [10, 11, 12, 13]


def test_strict_fails_the_load_and_loads_nothing(engine, tmp_path):
    data = rows(4) + [{"u": 1, "i": 90, "t": int(DAY.timestamp()), "kind": "purchase", "p": -3.0}]
    done = run_load(engine, "--format", "csv", "--columns", MAPPING, "--strict", str(write(tmp_path, data)))
    assert done.returncode == 2
    assert json.loads(done.stdout)["report"]["rejected"] == {"negative_price": 1}
    assert "--strict" in done.stderr and "negative_price 1" in done.stderr and "nothing loaded" in done.stderr
    assert events(engine) == []
    done = run_load(engine, "--format", "csv", "--columns", MAPPING, "--strict", str(write(tmp_path, rows(4))))
    assert done.returncode == 0 and len(events(engine)) == 4  # a clean file loads under --strict


def test_a_seconds_file_with_an_outlier_is_read_in_seconds(engine, tmp_path):
    """One row far in the future used to make the whole file milliseconds (1970)."""
    data = rows(4) + [{"u": 1, "i": 99, "t": 200_000_000_000, "kind": "view", "p": 1.0}]
    done = run_load(engine, "--format", "csv", "--columns", MAPPING, str(write(tmp_path, data)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["report"]["timestamp_unit"] == "s"
    loaded = events(engine)
    assert [ts for _, ts, _ in loaded] == [r["t"] * 1000 for r in rows(4)]  # 2026, not 1970


@pytest.mark.parametrize("unit, factor", [("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)])
def test_the_unit_is_detected_per_file(engine, tmp_path, unit, factor):
    data = [dict(r, t=r["t"] * factor) for r in rows(3)]
    done = run_load(engine, "--format", "csv", "--columns", MAPPING, str(write(tmp_path, data, f"{unit}.csv")))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["report"]["timestamp_unit"] == unit
    assert [ts for _, ts, _ in events(engine)] == [r["t"] * 1000 for r in rows(3)]


def test_the_unit_can_be_forced(engine, tmp_path):
    """Milliseconds of 1970-01-21 look like seconds; --timestamp-unit ms says what they are."""
    data = [dict(r, t=1_700_000_000 + k) for k, r in enumerate(rows(2))]
    done = run_load(engine, "--format", "csv", "--columns", MAPPING, "--timestamp-unit", "ms",
                    str(write(tmp_path, data)))
    assert done.returncode == 0, done.stderr
    assert [ts for _, ts, _ in events(engine)] == [1_700_000_000, 1_700_000_001]


@pytest.mark.parametrize("name, content, columns, problem", [
    ("bad.parquet", b"PAR1 this is not parquet", MAPPING, "Parquet"),
    ("bad.csv", b"u,i,t,kind,p\n1,2,\"3,view,1.0\n4,5,6", MAPPING, "EOF"),
    ("log.csv", None, "user=u,item=i,timestamp=when", "['when'] named in the mapping are not in the file"),
    ("log.parquet", None, "user=u,item=sku,timestamp=t", "['sku'] named in the mapping are not in the file"),
])
def test_a_malformed_file_is_one_line_exit_2_and_nothing_loaded(engine, tmp_path, name, content, columns,
                                                                 problem):
    path = tmp_path / name
    if content is None:
        write(tmp_path, rows(3), name)
    else:
        path.write_bytes(content)
    done = run_load(engine, "--format", "csv", "--columns", columns, str(path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and problem in lines[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert events(engine) == []


def test_a_future_row_in_the_file_does_not_move_the_latest_event_day(engine, tmp_path):
    from recsys.pipeline.precompute import latest_event_day

    data = rows(3) + [{"u": 1, "i": 99, "t": int(FUTURE.timestamp()), "kind": "view", "p": 1.0}]
    assert run_load(engine, "--format", "csv", "--columns", MAPPING, str(write(tmp_path, data))).returncode == 0
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(UserEvent.timestamp))).scalar()
    assert newest == rows(3)[-1]["t"] * 1000
    assert latest_event_day(engine) == DAY.date()
