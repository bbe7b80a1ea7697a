"""The flows Airflow runs: one function per task of ``dags/recsys_nightly.py`` (``nightly``)
and of ``dags/recsys_ab_results.py`` (``hourly``).

They sit above ``recsys.pipeline`` and ``recsys.abtest`` and call both; neither of
those imports a flow. Each function is named after its step in the one step list,
``recsys.pipeline.steps`` (``NIGHTLY``, ``HOURLY``), which also holds ``Skip`` and
the one way a step records itself (``recorded`` / ``recording``).
"""
