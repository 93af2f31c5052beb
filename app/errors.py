"""Domain errors. They carry meaning, not HTTP; one handler maps them to status codes."""


class TuneloopError(Exception):
    """Base of every error a user can cause and fix."""


class InvalidInput(TuneloopError):
    """The request is malformed or breaks a rule (HTTP 422)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotFound(TuneloopError):
    """The named thing does not exist (HTTP 404)."""


class Conflict(TuneloopError):
    """The request contradicts the current state (HTTP 409)."""


class LeaseExpired(Conflict):
    """The rater's lease on the item ran out, or they never held one."""


class Forbidden(TuneloopError):
    """The caller may not do this (HTTP 403)."""


class QueueUnavailable(TuneloopError):
    """The task broker cannot be reached (HTTP 503)."""
