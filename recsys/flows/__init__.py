"""The flows Airflow runs: one function per task of ``dags/recsys_nightly.py`` (``nightly``)
and of ``dags/recsys_ab_results.py`` (``hourly``).

They sit above ``recsys.pipeline`` and ``recsys.abtest`` and call both; neither of
those imports a flow. ``steps`` holds what every flow step shares: ``Skip`` and
the ``recorded`` decorator.
"""
