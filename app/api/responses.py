"""The error body every /api/v1 route returns, the `responses=` that declare it, and the
one map from domain errors to status codes (the API's handler and the dashboard's pages use it)."""

from pydantic import BaseModel

from app import errors

ERROR_STATUS = (
    (errors.InvalidInput, 422),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Forbidden, 403),
    (errors.QueueUnavailable, 503),
)


def status_for(error: errors.TuneloopError) -> int:
    return next((status for kind, status in ERROR_STATUS if isinstance(error, kind)), 400)


class FieldError(BaseModel):
    field: str | None = None
    message: str
    # The row of a bulk request the error belongs to, and why it failed there:
    # "invalid", "not_found" or "conflict".
    index: int | None = None
    reason: str | None = None


class ErrorBody(BaseModel):
    detail: str
    field: str | None = None
    errors: list[FieldError] | None = None


_MEANINGS = {
    401: "No token, or an invalid or revoked one.",
    403: "The token's user may not do this (admins only).",
    404: "A named thing does not exist.",
    409: "The request contradicts the current state.",
    413: "The body is over the configured size.",
    422: "Invalid input: `field` names what, `detail` says why; bulk requests list `errors` per row.",
    429: "Too many requests for this token; retry after `Retry-After` seconds.",
    503: "The database is unavailable; retry shortly.",
}

# Every authenticated route can answer these.
COMMON = (401, 413, 422, 429, 503)


def errors(*codes: int) -> dict[int | str, dict]:
    """`responses=` for a route: the common errors plus the given ones."""
    return {code: {"model": ErrorBody, "description": _MEANINGS[code]}
            for code in sorted(set(COMMON) | set(codes))}


def validation_error_body(problems: list[dict]) -> dict:
    """FastAPI's validation errors as ErrorBody: the field (dotted) and the reason.

    A location inside a bulk list, ("body", "ratings", 3, "verdict"), becomes
    index 3 and field "verdict".
    """
    rows = []
    for problem in problems:
        loc = list(problem.get("loc", ()))
        where = loc.pop(0) if loc and loc[0] in ("body", "query", "header", "path") else "body"
        message = problem.get("msg", "invalid")
        if problem.get("type") == "json_invalid":
            loc, message = [], f"invalid JSON ({problem.get('ctx', {}).get('error', 'unreadable')})"
        index = None
        if len(loc) >= 2 and isinstance(loc[1], int):
            index, loc = loc[1], loc[2:]
        field = ".".join(str(part) for part in loc) or (where if where == "body" else None)
        rows.append({"field": field, "message": message, "index": index, "reason": "invalid"})
    first = rows[0] if rows else {"field": None, "message": "invalid input", "index": None}
    prefix = f"row {first['index']}: " if first["index"] is not None else ""
    prefix += f"{first['field']}: " if first["field"] else ""
    return {"detail": prefix + first["message"], "field": first["field"], "errors": rows}
