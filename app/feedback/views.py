"""What a client is shown: a leased item (never its checkpoints or sources) and a rating."""

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from app.feedback.leasing import LeasedItem
from app.feedback.schemas import LeasedItemOut, RatingOut, ShownResponse
from app.models import Item, ItemResponse, Prompt, Rating, Sample


def leased_item_view(db: Session, leased: LeasedItem) -> LeasedItemOut:
    return leased_items_view(db, [leased])[0]


def leased_items_view(db: Session, leased: list[LeasedItem]) -> list[LeasedItemOut]:
    """Items as this rater sees them, in each lease's display order (one query for all)."""
    if not leased:
        return []
    rows = db.execute(
        select(ItemResponse.item_id, ItemResponse.position, Sample.id, Sample.text,
               Prompt.text.label("prompt"))
        .join(Sample, Sample.id == ItemResponse.sample_id)
        .join(Item, Item.id == ItemResponse.item_id)
        .join(Prompt, Prompt.id == Item.prompt_id)
        .where(ItemResponse.item_id.in_([one.item.id for one in leased]))
    ).all()
    by_item: dict[int, dict[int, Row]] = {}
    for row in rows:
        by_item.setdefault(row.item_id, {})[row.position] = row
    views = []
    for one in leased:
        by_position = by_item[one.item.id]
        order = one.lease.display_order or sorted(by_position)
        views.append(LeasedItemOut(
            item_id=one.item.id,
            kind=one.item.kind,
            prompt=next(iter(by_position.values())).prompt,
            responses=[ShownResponse(id=by_position[p].id, text=by_position[p].text) for p in order],
            lease_expires_at=one.lease.expires_at,
        ))
    return views


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
