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


class InvalidRows(InvalidInput):
    """Rows of a bulk request broke rules; nothing of it was stored (HTTP 422).

    `errors` holds one {"index", "field", "message", "reason"} per failed row;
    reason is "invalid", "not_found" or "conflict".
    """

    def __init__(self, errors: list[dict]):
        first = errors[0]
        super().__init__(f"{len(errors)} row(s) rejected, nothing was stored; "
                         f"row {first['index']}: {first['message']}", field=first["field"])
        self.errors = errors

    @staticmethod
    def row(index: int, error: TuneloopError) -> dict:
        reason = ("not_found" if isinstance(error, NotFound)
                  else "conflict" if isinstance(error, Conflict) else "invalid")
        return {"index": index, "field": getattr(error, "field", None),
                "message": str(error), "reason": reason}
