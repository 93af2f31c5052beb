"""The rater's progress line: answered today, and what is left for them."""

from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.feedback.leasing import open_items_up_to
from app.models import Rating, utcnow

# Counting every open item on each submit would grow with the pool; past this
# many the page says "1000+".
LEFT_CAP = 1000


@dataclass(frozen=True)
class Progress:
    rated_today: int
    left: int

    @property
    def left_label(self) -> str:
        return f"{LEFT_CAP}+" if self.left >= LEFT_CAP else str(self.left)


def progress_for(db: Session, user_id: int) -> Progress:
    # "Today" is the UTC day: the same for every rater and every replica.
    midnight = datetime.combine(utcnow().date(), time.min, tzinfo=utcnow().tzinfo)
    rated = db.scalar(select(func.count()).select_from(Rating).where(
        Rating.user_id == user_id, Rating.created_at >= midnight)) or 0
    return Progress(rated_today=rated, left=open_items_up_to(db, user_id, LEFT_CAP))
