"""The serving core's typed errors, each with the HTTP status the API answers it with.

The stores raise ``DependencyDown`` when Redis or the database does not answer (the services fall back
or the request is a 503) and ``InvalidInputError`` for a value the database refuses; the services raise
them for a request's input (an unknown product or category, an event id re-used for another event).
The API's handlers (``recsys.api.errors``) turn any ``ServingError`` into the one error body; the
status is the error's own because ``POST /events/batch`` answers it per event too.
"""

from __future__ import annotations


class ServingError(Exception):
    """An error with an HTTP status and a readable message, naming the input ``field`` it concerns."""

    status_code = 500

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInputError(ServingError):
    """Input that passed the schema but not the business rules (unknown product, ...)."""

    status_code = 422


class NotFoundError(ServingError):
    status_code = 404


class ConflictError(ServingError):
    """A client event id re-used for a different event."""

    status_code = 409


class DependencyDown(ServingError):
    """Redis or the database did not answer; the client may retry later."""

    status_code = 503

    def __init__(self, dependency: str, cause: BaseException | str):
        super().__init__(f"{dependency} unavailable: {cause}")
        self.dependency = dependency
