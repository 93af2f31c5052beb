"""Finding ratings for admins: one filter shared by the listing and the exports."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.feedback.schemas import ProvenanceOut, RatingPage, RatingRecord
from app.feedback.views import rating_view
from app.models import ItemResponse, Rating, Sample, User
from app.users.service import NAME_PATTERN


@dataclass
class RatingFilter:
    item_id: int | None = None
    rater: str | None = None  # user name
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    # Ratings of items that showed at least one response of this checkpoint.
    checkpoint_id: int | None = None

    def check(self) -> "RatingFilter":
        """Refuse what cannot match before any query runs: the exports stream, and an error the
        database raised mid-stream would cut the response off instead of answering 422."""
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput("since must be before until", field="until")
        if self.rater is not None and not NAME_PATTERN.match(self.rater):
            raise InvalidInput("rater: not a user name (1-64 letters, digits or _ . @ -)", field="rater")
        return self

    def apply(self, query: Select) -> Select:
        """Narrow a query that selects from Rating joined to User."""
        if self.item_id is not None:
            query = query.where(Rating.item_id == self.item_id)
        if self.rater is not None:
            query = query.where(User.name == self.rater)
        if self.since is not None:
            query = query.where(Rating.created_at >= self.since)
        if self.until is not None:
            query = query.where(Rating.created_at < self.until)
        if self.checkpoint_id is not None:
            query = query.where(Rating.item_id.in_(
                select(ItemResponse.item_id)
                .join(Sample, Sample.id == ItemResponse.sample_id)
                .where(Sample.checkpoint_id == self.checkpoint_id)))
        return query


def shown_responses(provenance: list) -> list[ProvenanceOut]:
    return [ProvenanceOut(response_id=p["sample_id"], checkpoint_id=p.get("checkpoint_id"),
                          source=p.get("source") or "") for p in provenance]


def list_ratings(db: Session, where: RatingFilter, *, after_id: int = 0, limit: int = 100) -> RatingPage:
    """Oldest first; a page ends at `limit` and the next starts after its last id."""
    rows = db.execute(
        where.check().apply(select(Rating, User.name).join(User, User.id == Rating.user_id))
        .where(Rating.id > after_id)
        .order_by(Rating.id)
        .limit(limit + 1)
    ).all()
    page = [RatingRecord(**rating_view(r.Rating).model_dump(), rater_id=r.Rating.user_id,
                         rater=r.name, shown=shown_responses(r.Rating.provenance))
            for r in rows[:limit]]
    more = len(rows) > limit
    return RatingPage(ratings=page, next_cursor=str(page[-1].id) if more else None)
