"""Answer (or skip) one item and lease the next: the one service the rating routes call."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.checkpoints.service import current_checkpoint
from app.errors import Conflict, LeaseExpired, NotFound
from app.feedback.leasing import LeasedItem, lease_next_item, skip_item
from app.feedback.ratings import submit_rating
from app.models import Item
from app.pages.progress import Progress, progress_for
from app.pages.rating_form import Submission

# Shown after a post; routes pass only these keys around (never free text in URLs).
NOTICES = {
    "saved": "Saved.",
    "replayed": "Already saved — that answer was stored once.",
    "skipped": "Skipped. It goes to another rater.",
    "expired": "Your time on that item ran out and other raters have answered it. "
               "Here is the next one.",
    "conflict": "You had already answered that item with a different answer; "
                "your first answer is kept.",
    "gone": "That item no longer exists. Here is the next one.",
}


@dataclass
class RatingView:
    """Everything the rating panel shows."""

    leased: LeasedItem | None
    progress: Progress
    notice: str = ""
    # Why there is nothing to rate: "answered" (open items remain, but none this rater may
    # take), "generating" (none open for anyone; the current model is making more), or
    # "no_model" (none open, and no current checkpoint to make more: it is being built or
    # has yet to be registered).
    empty_reason: str = ""


def answer_item(db: Session, user_id: int, submission: Submission) -> str:
    """Store the answer or the skip; returns a NOTICES key. InvalidInput propagates."""
    item = db.get(Item, submission.item_id)
    if item is None:
        return "gone"
    if submission.action == "skip":
        skip_item(db, user_id, item.id)
        return "skipped"
    try:
        stored = submit_rating(db, user_id, submission.rating_input(item.kind),
                               idempotency_key=submission.idempotency_key or None)
    except LeaseExpired:
        return "expired"
    except NotFound:
        return "gone"
    except Conflict:
        return "conflict"
    return "saved" if stored.created else "replayed"


def next_view(db: Session, user_id: int, notice_key: str = "") -> RatingView:
    leased = lease_next_item(db, user_id)
    empty_reason = ""
    if leased is None:
        if db.scalar(select(Item.id).where(Item.done.is_(False)).limit(1)) is not None:
            empty_reason = "answered"
        else:
            empty_reason = "generating" if current_checkpoint(db) is not None else "no_model"
    return RatingView(leased=leased, progress=progress_for(db, user_id),
                      notice=NOTICES.get(notice_key, ""), empty_reason=empty_reason)
