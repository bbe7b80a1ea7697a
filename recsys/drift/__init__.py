"""Drift reports: is the data, or the model's output, moving? (issue 15)

- ``stats``: distances (PSI, Jensen-Shannon), p-values and the Gini coefficient, pure;
- ``data``: daily profiles of the events and their comparison with a reference window, pure;
- ``output``: a new model's lists against the LIVE model's (coverage, Gini, popularity, overlap), pure;
- ``render``: the reports as HTML pages;
- ``report``: the nightly steps ``drift_report`` and ``output_drift`` (store, database, run records).
"""
