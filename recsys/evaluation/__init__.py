"""Offline evaluation on real event logs against strong baselines (``python -m recsys evaluate``).

- ``logs``: read the event log (and an optional fixed test log) through ``recsys.data.loaders``.
- ``protocol``: the temporal split, positives, exclusions and user / item groups.
- ``baselines``: trending, item-kNN (co-occurrence cosine) and the ``implicit`` ALS adapter.
- ``models``: every compared model by name, built on the training side of a split.
- ``scoring``: top-k lists, metrics at k, curves over k = 1..20 and breakdowns per group.
- ``tuning``: a seeded, time-boxed search over the hybrid's configuration on a validation split.
- ``runner``: one evaluation run end to end; ``report``: Markdown, JSON and PNG outputs.
"""
