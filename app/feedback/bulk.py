"""Many ratings in one request, for vendors uploading offline work: all or none.

Each row goes through submit_rating, the same rule as a single answer: the
caller must hold a lease on the item, live or expired while the item still
needs answers. Rows are taken in item order so that two concurrent uploads
lock items in the same order and never deadlock.
"""

from sqlalchemy.orm import Session

from app.errors import InvalidRows, TuneloopError
from app.feedback.ratings import RatingInput, StoredRating, submit_rating


def submit_ratings(db: Session, user_id: int,
                   rows: list[tuple[RatingInput, str | None]]) -> list[StoredRating]:
    """Store every row or none; InvalidRows names each failed row by its index."""
    stored: dict[int, StoredRating] = {}
    failed = []
    for index in sorted(range(len(rows)), key=lambda i: (rows[i][0].item_id, i)):
        answer, key = rows[index]
        try:
            stored[index] = submit_rating(db, user_id, answer, idempotency_key=key)
        except TuneloopError as error:
            failed.append(InvalidRows.row(index, error))
    if failed:
        raise InvalidRows(sorted(failed, key=lambda e: e["index"]))
    return [stored[i] for i in range(len(rows))]
