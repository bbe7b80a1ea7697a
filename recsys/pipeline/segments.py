"""Who precomputes whom: segments (a property of each user) and user-hash shards (the unit of work).

A segment is ``region|device|value`` (``"EU|mobile|regular"``): what a user is,
for reports and tests. The nightly precompute maps over ``RECSYS_PRECOMPUTE_SHARDS``
shards of ``user_id`` instead, so that every mapped task (every Celery worker)
gets an equal share whatever the segments' sizes: ``shard_of`` is a fixed
multiplicative hash (Fibonacci hashing), the same in every process and on
every run.
"""

from __future__ import annotations

import numpy as np

from recsys.constants import DEVICES, REGIONS, VALUE_SEGMENTS

SEGMENT_SEP = "|"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: consecutive ids spread evenly over the shards
_US = {"US", "CA"}
_EU = set("AT BE BG CH CY CZ DE DK EE ES FI FR GB GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI SK".split())
_APAC = set("AU CN HK ID IN JP KR MY NZ PH SG TH TW VN".split())
_MOBILE = {"mobile", "phone", "smartphone", "tablet", "ios", "android"}


class PrecomputeError(RuntimeError):
    """Precompute cannot run (no LIVE model, unknown segment, no events)."""


def region_of(country: str | None) -> str:
    """US / EU / APAC / OTHER from an ISO country code (missing or unknown: OTHER)."""
    code = country.strip().upper() if isinstance(country, str) else ""
    return "US" if code in _US else "EU" if code in _EU else "APAC" if code in _APAC else "OTHER"


def device_of(device: str | None) -> str:
    """mobile (phones, tablets) or desktop (anything else, also missing)."""
    return "mobile" if isinstance(device, str) and device.strip().lower() in _MOBILE else "desktop"


def segment_of(country: str | None, device: str | None, value: str) -> str:
    """``region|device|value``, e.g. ``"EU|mobile|regular"``."""
    if value not in VALUE_SEGMENTS:
        raise ValueError(f"value segment must be one of {VALUE_SEGMENTS}, not {value!r}")
    return SEGMENT_SEP.join((region_of(country), device_of(device), value))


def parse_segment(segment: str) -> tuple[str, str, str]:
    parts = tuple(segment.split(SEGMENT_SEP))
    if len(parts) != 3 or parts[0] not in REGIONS or parts[1] not in DEVICES or parts[2] not in VALUE_SEGMENTS:
        raise PrecomputeError(
            f"bad segment {segment!r}: expected region|device|value with region in {REGIONS}, "
            f"device in {DEVICES}, value in {VALUE_SEGMENTS}"
        )
    return parts  # type: ignore[return-value]


def shard_of(user_ids, shards: int) -> np.ndarray:
    """The shard (``0 .. shards - 1``) of each user id: the high 32 bits of ``id * golden`` (mod 2^64), mod ``shards``."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, not {shards}")
    ids = np.atleast_1d(np.asarray(user_ids, dtype=np.int64)).astype(np.uint64)
    return ((ids * _GOLDEN) >> np.uint64(32)) % np.uint64(shards)


def check_shard(shard: int, shards: int) -> int:
    """``shard`` if it is one of ``0 .. shards - 1``, else ``PrecomputeError``."""
    if isinstance(shard, bool) or not isinstance(shard, (int, np.integer)) or not 0 <= shard < shards:
        raise PrecomputeError(f"bad shard {shard!r}: expected an integer in 0..{shards - 1} "
                              f"(RECSYS_PRECOMPUTE_SHARDS={shards})")
    return int(shard)
