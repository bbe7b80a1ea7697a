"""Section 1c of bench/README.md: a filtered request beside the cache hit (``bench.serving_filtered``)."""

from __future__ import annotations

from bench.report_format import sig, table

ROWS = (("plain", "plain request: the cache hit (reference)"),
        ("in_stock_only", "`in_stock_only=true`: most cached answers fit, sent from their items that pass"),
        ("exclude_page", "`exclude=` the 10 products the plain answer shows: the answer's next 10"),
        ("category", "`category=` the largest category: answers rarely fit, Tier 1 from the cached candidates "
                     "then the fallback tiers"))


def serving_filtered(doc: dict) -> str:
    plain = doc["plain"]["median_us_per_call"]
    body = [[label, sig(doc[name]["median_us_per_call"]), f"{doc[name]['median_us_per_call'] / plain:.2f}",
             f"{doc[name]['cache_hit_share']:.3f}"] for name, label in ROWS if name in doc]
    return "\n\n".join([
        "## 1c. Filtered requests beside the cache hit (in process)",
        f"`{doc['command']}` ({doc['date'][:16].replace('T', ' ')} UTC): `respond(user_id, 10)` of "
        f"{doc['users']} Tier-1 users whose answer is cached, each case timed over the same users alternately "
        f"(median of {len(doc['plain']['passes_us'])} passes, µs per call of wall time on a shared machine; the "
        f"category is {doc['category_filter']!r}).",
        table(["request", "µs per call", "x plain", "sent from the cached answer"], body),
        "A filter the cached answer fits costs the decoding of the answer's items and the filter per item; one it "
        "does not fit is a re-rank of the user's cached candidates plus the fallback tiers (no answer is written "
        "back for a filtered request). Plain requests keep their fast path and the cached answer's bytes.",
    ])
