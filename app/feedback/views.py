"""What a client is shown: a leased item (never its checkpoints or sources) and a rating."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.feedback.leasing import LeasedItem
from app.feedback.schemas import LeasedItemOut, RatingOut, ShownResponse
from app.models import ItemResponse, Prompt, Rating, Sample


def leased_item_view(db: Session, leased: LeasedItem) -> LeasedItemOut:
    """The item as this rater sees it, in the lease's display order (one query)."""
    rows = db.execute(
        select(ItemResponse.position, Sample.id, Sample.text, Prompt.text.label("prompt"))
        .join(Sample, Sample.id == ItemResponse.sample_id)
        .join(Prompt, Prompt.id == leased.item.prompt_id)
        .where(ItemResponse.item_id == leased.item.id)
    ).all()
    by_position = {row.position: row for row in rows}
    order = leased.lease.display_order or sorted(by_position)
    return LeasedItemOut(
        item_id=leased.item.id,
        kind=leased.item.kind,
        prompt=rows[0].prompt,
        responses=[ShownResponse(id=by_position[p].id, text=by_position[p].text) for p in order],
        lease_expires_at=leased.lease.expires_at,
    )


def rating_view(rating: Rating) -> RatingOut:
    return RatingOut(
        id=rating.id,
        item_id=rating.item_id,
        verdict=rating.verdict,
        preferred_response_id=rating.preferred_sample_id,
        scores=rating.scores,
        comment=rating.comment,
        time_spent_ms=rating.time_spent_ms,
        created_at=rating.created_at,
    )
