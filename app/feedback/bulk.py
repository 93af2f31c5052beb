"""Many ratings in one request, for vendors uploading offline work: all or none.

Every row follows the rule of a single answer (app.feedback.ratings.store_answers,
which stores them all in one pass): the caller must hold a lease on the item,
live or expired while the item still needs answers. Rows are taken in item order,
so a row repeating an earlier one (same item or key) replays the first of them.
"""

from sqlalchemy.orm import Session

from app.errors import InvalidRows, TuneloopError
from app.feedback.ratings import RatingInput, StoredRating, store_answers


def submit_ratings(db: Session, user_id: int,
                   rows: list[tuple[RatingInput, str | None]]) -> list[StoredRating]:
    """Store every row or none; InvalidRows names each failed row by its index."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0].item_id, i))
    outcomes = dict(zip(order, store_answers(db, user_id, [rows[i] for i in order])))
    failed = [InvalidRows.row(index, outcome) for index, outcome in sorted(outcomes.items())
              if isinstance(outcome, TuneloopError)]
    if failed:
        raise InvalidRows(failed)
    return [outcomes[i] for i in range(len(rows))]
