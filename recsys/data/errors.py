"""Errors about the data a step reads (cheap to import)."""


class NoTrainingDataError(ValueError):
    """The training window holds no usable interactions."""
