"""What a client is shown: a leased item (never its checkpoints or sources) and a rating."""

from app.feedback.leasing import LeasedItem
from app.feedback.schemas import LeasedItemOut, RatingOut, ShownResponse
from app.models import Rating


def leased_item_view(leased: LeasedItem) -> LeasedItemOut:
    return LeasedItemOut(
        item_id=leased.item_id,
        kind=leased.kind,
        prompt=leased.prompt,
        messages=leased.messages,
        responses=[ShownResponse(id=r.sample_id, text=r.text) for r in leased.responses],
        lease_expires_at=leased.expires_at,
    )


def rating_view(rating: Rating) -> RatingOut:
    return RatingOut(
        id=rating.id,
        item_id=rating.item_id,
        verdict=rating.verdict,
        preferred_response_id=rating.preferred_sample_id,
        scores=rating.scores,
        thumb=rating.thumb,
        comment=rating.comment,
        time_spent_ms=rating.time_spent_ms,
        created_at=rating.created_at,
    )
