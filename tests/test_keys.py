"""The value encodings of recsys.keys."""

from __future__ import annotations

import orjson

from recsys.keys import encode_recs, recs_payload


def test_a_real_time_models_list_holds_the_key_of_its_sequence():
    """The real-time path writes its lists through ``recs_payload`` (it built the value by hand before)."""
    plain = recs_payload([3, 1], [0.9, 0.5], ["r", "r"], "m-1", "2026-12-01T00:00:00+00:00")
    assert plain == {"products": [3, 1], "scores": [0.9, 0.5], "reasons": ["r", "r"], "model_version": "m-1",
                     "updated_at": "2026-12-01T00:00:00+00:00"}
    made_for = recs_payload([3, 1], [0.9, 0.5], None, "m-1", "2026-12-01T00:00:00+00:00", sequence="7,5,2")
    assert made_for == {**plain, "reasons": [], "seq": "7,5,2"}
    assert orjson.loads(encode_recs(made_for))["seq"] == "7,5,2"
