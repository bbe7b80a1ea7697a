"""Constants shared by test modules (import this, not conftest: several conftest.py files exist)."""

from __future__ import annotations

import datetime as dt
import os

REDIS_URL = os.environ.get("RECSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# the synthetic shop's last day of events; the nightly run for RUN_DATE processes it
LAST_EVENT_DAY = dt.date(2026, 11, 20)
RUN_DATE = LAST_EVENT_DAY + dt.timedelta(days=1)
