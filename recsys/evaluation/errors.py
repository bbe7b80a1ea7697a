"""Typed errors of the offline evaluation; the CLI prints their message and exits with status 2."""

from __future__ import annotations


class EvaluationError(ValueError):
    """The evaluation cannot run on the given input (bad split, bad option)."""


class EmptyTestSetError(EvaluationError):
    """The split leaves no user with a positive on a candidate item after the cut-off."""


class EmptyTrainingSetError(EvaluationError):
    """The split leaves no interaction before the cut-off."""
