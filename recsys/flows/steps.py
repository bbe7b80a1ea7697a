"""What every flow step shares: ``Skip`` (the DAG marks the task skipped) and ``recorded``.

``recorded(step)`` wraps a step function whose arguments include ``engine`` and
``day``: the step's outcome (SUCCESS with its small result, SKIPPED with the
reason, FAILED with the error) and its duration land in ``pipeline_runs`` under
``(day, step)``, so re-runs upsert. Those records feed the pipeline metrics
(ModelTrainingFailed, training duration).
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import time
from typing import Any, Callable


class Skip(Exception):
    """Nothing to do for this task in this run (the DAG marks the task skipped)."""


def _details(result: Any, started: float) -> dict:
    details = dict(result) if isinstance(result, dict) else {"count": len(result)}
    details = {k: v for k, v in details.items() if isinstance(v, (str, int, float, bool, type(None)))}
    details["duration_seconds"] = round(time.perf_counter() - started, 3)
    return details


def recorded(step: str) -> Callable:
    """Record each run of the decorated step; ``step`` may name arguments (``"precompute:{segment}"``)."""

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            from recsys.constants import STEP_SKIPPED, STEP_SUCCESS
            from recsys.pipeline.runs import record_failure, record_step

            bound = signature.bind(*args, **kwargs).arguments
            engine, day = bound["engine"], bound["day"]
            name = step.format(**bound)[:64]
            started = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except Skip as exc:
                record_step(engine, day, name, STEP_SKIPPED, {"reason": str(exc)})
                raise
            except Exception as exc:
                record_failure(engine, day, name, exc)
                raise
            record_step(engine, day, name, STEP_SUCCESS, _details(result, started))
            return result

        return run

    return decorate


def day_of(produced: dict) -> dt.date:
    """The processed day an upstream task handed on (its ``day``, ISO format)."""
    try:
        return dt.date.fromisoformat(produced["day"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the upstream task's result names no processed day (a 'day' in ISO format): {produced!r}") from exc
