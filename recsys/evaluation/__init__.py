"""Evaluation, in one place: the nightly hold-out day and offline runs on real event logs
(``python -m recsys evaluate``), against strong baselines, and model selection per shop.

- ``holdout``: the nightly gate (a candidate, the LIVE model and popularity on the newest day).
- ``popularity``: popularity and random, the simplest baselines (also used by the gate).
- ``logs``: read the event log (and an optional fixed test log) through ``recsys.data.loaders``.
- ``protocol``: the time and per-customer splits, positives, what is excluded (``RECSYS_EXCLUDE_SEEN``),
  user / item groups, and the validation split carved from the training side.
- ``baselines``: trending, item-kNN (co-occurrence cosine) and the ``implicit`` ALS adapter.
- ``models``: every compared model by name, built on the training side of a split.
- ``reranking``: the production re-ranking (``recsys.ranking``) applied to offline lists.
- ``scoring``: top-k lists, metrics at k, curves over k = 1..20 and breakdowns per group.
- ``selection``: named candidates per model family, chosen by a validation metric within a time box.
- ``tuning``: a seeded, time-boxed search over the hybrid's configuration on a validation split.
- ``runner``: one evaluation run end to end; ``report``: Markdown, JSON and PNG outputs.
"""
