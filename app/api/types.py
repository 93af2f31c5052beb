"""Field types shared by the API schemas: they keep hostile input away from the database."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from app.errors import InvalidInput

# Primary keys are 32-bit integers: larger numbers can name nothing, and
# must not reach the database (they would overflow there).
MAX_ID = 2**31 - 1
# In a JSON body a number must be a JSON integer: not true, "7" or 7.0.
Id = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]
# In a query string or a JSON object's key everything is text: "7" is 7.
IdText = Annotated[int, Field(ge=1, le=MAX_ID)]
Int = Annotated[int, Field(strict=True)]


def _text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode (a lone surrogate)") from None
    return value


# Any string a client sends: storable as UTF-8 text by every backend.
Text = Annotated[str, AfterValidator(_text)]


def text_limits(max_chars: int, *, required: bool = False) -> dict:
    """JSON Schema hints for a text the service checks (so generated clients and
    fuzzers send valid text); the service stays the one place that enforces them."""
    hints: dict = {"maxLength": max_chars}
    if required:
        hints |= {"minLength": 1}
    return {"json_schema_extra": hints}


def as_utc(moment: datetime | None, field: str) -> datetime | None:
    """Query times without a zone are taken as UTC; one that UTC cannot hold (the first hours of
    year 1 east of Greenwich) is invalid input, not a server error."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{field}: {moment.isoformat()} is out of range in UTC", field=field) from None
