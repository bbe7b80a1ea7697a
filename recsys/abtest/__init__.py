"""A/B tests of recommendation models: assignment, impressions, statistics, results, dashboard.

Pure cores (``assignment``, ``stats``, ``attribution``) and thin adapters around them
(``store`` for the database, ``impressions`` for the Redis stream, ``results`` and
``service`` where I/O and decisions meet). Names of statuses and arms live in
``recsys.constants``.
"""
