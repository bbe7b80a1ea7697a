"""The nightly DAG's trigger form, its deadline alert, and the one Airflow bug around it that we work around.

``nightly_params()`` is the trigger form (UI *Trigger DAG*, ``--conf``), its
defaults from the settings; ``recsys.flows.nightly.RunParams`` reads it back.

``nightly_deadline()`` pages on-call (``recsys_alerts.on_deadline_missed``) when a
run is not done ``RECSYS_DAG_DEADLINE_HOURS`` after it was queued (a fraction
of an hour is allowed; 0 turns it off).

``allow_dag_test(dag)`` keeps ``dag.test()`` and ``airflow dags test`` working
with that deadline. Upstream cause (Airflow 3.3.2, unchanged on apache/airflow
main): ``DAG.test()`` (task-sdk ``airflow/sdk/definitions/dag.py``) builds the
scheduler's view of the DAG in memory,
``DagSerialization.deserialize_dag(DagSerialization.serialize_dag(self))``, so that
view's ``deadline`` holds the encoded alerts (dicts). Only
``SerializedDagModel.write_dag`` (``_generate_deadline_uuids``) replaces them with
the ids of ``deadline_alert`` rows, which is what the scheduler reads. When the
test run succeeds, ``DagRun.update_state`` calls
``DeadlineAlertModel.get_by_id(<dict>)`` and fails with
``'dict' object has no attribute 'hex'``. While this DAG's ``test()`` runs (and
only then), ``get_by_id`` also accepts such a dict and answers an unsaved row
built from it, so the finished run's unmet deadlines are pruned as the scheduler
prunes them. The scheduler never calls ``test()``: its deadline handling is untouched.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any


def nightly_params() -> dict:
    from airflow.sdk import Param

    from recsys.families import names  # the registry: cheap to import (no pandas at parse time)
    from recsys.settings import get_settings

    s = get_settings()  # environment variables only: no I/O at parse time
    return {
        "window_days": Param(s.training_window_days, type="integer", minimum=2, maximum=730,
                             description="Training window in days, ending with the processed day (the newest day is the hold-out)."),
        "epochs": Param(s.epochs, type="integer", minimum=1, maximum=500, description="LightFM training epochs."),
        "loss": Param(s.loss, type="string", enum=["warp", "bpr", "logistic", "warp-kos"], description="LightFM loss."),
        "force_promotion": Param(False, type="boolean", description="Promote the new model even if it does not beat the LIVE one."),
        "dry_run": Param(False, type="boolean", description="Train and evaluate only: promote, publish and precompute nothing."),
        "promotion_policy": Param(s.promotion_policy, type="string", enum=["auto", "ab_test"],
                                  description="auto: promote or archive; ab_test: a winner waits as CANDIDATE for an A/B test."),
        "family": Param("auto", type="string", enum=["auto", *names()],
                        description="auto: model selection on the training window's validation days picks the family; "
                                    "else train this family (its default configuration) without selection."),
        "challenger_candidate": Param(False, type="boolean",
                                      description="Keep the challenger branch's model (RECSYS_CHALLENGER_FAMILY) as a "
                                                  "CANDIDATE for an A/B test even if it does not beat the LIVE model "
                                                  "on the hold-out day (the gate's verdict is recorded as the reason)."),
    }


def nightly_deadline(hours: float | None = None):
    """The DAG-run deadline (``DAGRUN_QUEUED_AT`` + ``hours``), or None when ``hours`` is 0."""
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference, SyncCallback

    from recsys.settings import get_settings

    hours = get_settings().dag_deadline_hours if hours is None else hours
    if not hours:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(hours=hours),
        callback=SyncCallback("recsys_alerts.on_deadline_missed", kwargs={"limit": f"{hours:g} hours"}),
    )


def _get_by_id_accepting_encoded_alerts(real):
    def get_by_id(alert_id: Any, *args: Any, **kwargs: Any):
        if isinstance(alert_id, dict):  # an encoded alert: only dag.test()'s in-memory DAG carries these
            from airflow.models.deadline_alert import DeadlineAlert

            encoded = alert_id.get("__var", alert_id)
            return DeadlineAlert(reference=encoded["reference"], interval=encoded["interval"],
                                 callback_def=encoded["callback"])
        return real(alert_id, *args, **kwargs)

    return get_by_id


def allow_dag_test(dag):
    """Make ``dag.test()`` survive the deadline bug described above; returns ``dag``."""
    original = dag.test

    @functools.wraps(original)
    def test(*args: Any, **kwargs: Any):
        from unittest import mock

        from airflow.models.deadline_alert import DeadlineAlert

        patched = _get_by_id_accepting_encoded_alerts(DeadlineAlert.get_by_id)
        with mock.patch.object(DeadlineAlert, "get_by_id", patched):
            return original(*args, **kwargs)

    dag.test = test
    return dag
