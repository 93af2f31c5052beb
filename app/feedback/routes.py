"""/api/v1 items, ratings and exports: lease, answer, list and export feedback."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Response, status
from fastapi.responses import StreamingResponse

from app.api.responses import errors
from app.api.types import IdText, as_utc
from app.deps import CurrentAdmin, CurrentRater, SessionDep
from app.feedback import export
from app.feedback.bulk import submit_ratings
from app.feedback.client_items import create_client_items
from app.feedback.gold import mark_gold
from app.feedback.leasing import lease_items, lease_next_item
from app.feedback.listing import RatingFilter, list_ratings
from app.feedback.ratings import RatingInput, submit_rating
from app.feedback.schemas import (
    BulkRatingsIn,
    BulkRatingsOut,
    GoldIn,
    GoldOut,
    ItemIds,
    ItemsIn,
    LeasedItemOut,
    LeasedItems,
    LeaseRequest,
    RatingAndNextOut,
    RatingIn,
    RatingPage,
)
from app.feedback.views import leased_item_view, rating_view
from app.models import Verdict

router = APIRouter(tags=["feedback"])

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key",
    description="Retry-safe: the same key and body return the first result; "
                "the same key with another body is a 409.")]


def _answer(body: RatingIn) -> RatingInput:
    return RatingInput(item_id=body.item_id, verdict=body.verdict,
                       preferred_response_id=body.preferred_response_id, scores=body.scores,
                       comment=body.comment, time_spent_ms=body.time_spent_ms, thumb=body.thumb)


@router.post("/items", status_code=status.HTTP_201_CREATED, response_model=ItemIds,
             responses=errors(403, 404))
def create_items(body: ItemsIn, db: SessionDep, admin: CurrentAdmin) -> ItemIds:
    """Bring your own responses to rate (compare two or more, or score one); all or none."""
    return ItemIds(ids=create_client_items(db, body.items))


@router.put("/items/{item_id}/gold", response_model=GoldOut, responses=errors(403, 404))
def put_gold(item_id: IdText, body: GoldIn, db: SessionDep, admin: CurrentAdmin) -> GoldOut:
    """Mark an item's right answer: a gold item, mixed in blind, that measures every rater who answers it."""
    item = mark_gold(db, item_id, Verdict(body.verdict), body.preferred_response_id)
    return GoldOut(item_id=item.id, verdict=body.verdict, preferred_response_id=body.preferred_response_id,
                   overlap=item.overlap)


@router.get("/items/next", response_model=LeasedItemOut,
            responses=errors() | {204: {"description": "Nothing left to rate for this caller."}})
def lease_next(db: SessionDep, rater: CurrentRater) -> LeasedItemOut | Response:
    """Lease the next item to rate; the same item again while the lease lives."""
    leased = lease_next_item(db, rater.id)
    if leased is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return leased_item_view(leased)


@router.post("/items/leases", response_model=LeasedItems, responses=errors())
def lease_many(body: LeaseRequest, db: SessionDep, rater: CurrentRater) -> LeasedItems:
    """Lease up to `count` items to answer offline and upload with POST /ratings/bulk."""
    return LeasedItems(items=[leased_item_view(one) for one in lease_items(db, rater.id, body.count)])


@router.post("/ratings", status_code=status.HTTP_201_CREATED, response_model=RatingAndNextOut,
             responses=errors(404, 409) | {200: {"model": RatingAndNextOut,
                                                 "description": "A replay: the first answer, unchanged."}})
def create_rating(body: RatingIn, response: Response, db: SessionDep, rater: CurrentRater,
                  idempotency_key: IdempotencyKey = None,
                  lease_next: Annotated[bool, Query(description=(
                      "Also lease your next item and return it as next_item (null when nothing is "
                      "left): one request per answer instead of two."))] = False) -> RatingAndNextOut:
    """Answer an item you leased (201), or replay an earlier answer (200)."""
    stored = submit_rating(db, rater.id, _answer(body), idempotency_key=idempotency_key)
    if not stored.created:
        response.status_code = status.HTTP_200_OK
    leased = None
    if lease_next:
        # The answer is stored and its item unlocked before the next lease is looked for;
        # if leasing fails now, a retry under the same key replays the stored answer.
        db.commit()
        leased = lease_next_item(db, rater.id)
    return RatingAndNextOut(**rating_view(stored.rating).model_dump(),
                            next_item=leased_item_view(leased) if leased else None)


@router.post("/ratings/bulk", status_code=status.HTTP_201_CREATED, response_model=BulkRatingsOut,
             responses=errors() | {200: {"model": BulkRatingsOut,
                                         "description": "Every row replayed an earlier answer."}})
def create_ratings(body: BulkRatingsIn, response: Response, db: SessionDep,
                   rater: CurrentRater) -> BulkRatingsOut:
    """Answer items you hold leases on (expired ones too, while the item needs answers); all or none."""
    stored = submit_ratings(db, rater.id, [(_answer(r), r.idempotency_key) for r in body.ratings])
    created = sum(s.created for s in stored)
    if not created:
        response.status_code = status.HTTP_200_OK
    return BulkRatingsOut(ratings=[rating_view(s.rating) for s in stored], created=created)


def rating_filter(
    item_id: Annotated[IdText | None, Query()] = None,
    rater: Annotated[str | None, Query(max_length=64, description="A user name.")] = None,
    since: Annotated[datetime | None, Query(description="Inclusive; UTC when no zone is given.")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive; UTC when no zone is given.")] = None,
    checkpoint_id: Annotated[IdText | None, Query(
        description="Only items that showed a response of this checkpoint.")] = None,
) -> RatingFilter:
    return RatingFilter(item_id=item_id, rater=rater, since=as_utc(since, "since"), until=as_utc(until, "until"),
                        checkpoint_id=checkpoint_id).check()


FilterDep = Annotated[RatingFilter, Depends(rating_filter)]


@router.get("/ratings", response_model=RatingPage, responses=errors(403))
def get_ratings(
    db: SessionDep, admin: CurrentAdmin, where: FilterDep,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,10}$",
                                        description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RatingPage:
    """Ratings with provenance, oldest first, a page at a time (admins only)."""
    return list_ratings(db, where, after_id=int(cursor or 0), limit=limit)


JSONL = "application/x-ndjson"


def _jsonl(lines, name: str) -> StreamingResponse:
    return StreamingResponse(lines, media_type=JSONL,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/export/preferences", response_class=StreamingResponse, responses=errors(403) | {
    200: {"content": {JSONL: {"schema": {"type": "string"}}},
          "description": "One JSON object a line: prompt, chosen, rejected, tie and provenance."}})
def export_preferences(admin: CurrentAdmin, where: FilterDep,
                       include_ties: Annotated[bool, Query(
                           description="Also tied pairs, marked tie: true.")] = False,
                       format: Annotated[Literal["standard", "conversational"], Query(
                           description="standard: prompt, chosen, rejected as text; conversational: prompt as "
                                       "a list of messages, chosen and rejected as the assistant's message "
                                       "(TRL's conversational preference format)")] = "standard",
                       ) -> StreamingResponse:
    """Preference pairs as JSONL for TRL / datasets (admins only); ties only on request."""
    return _jsonl(export.stream_jsonl(export.preference_rows, where, include_ties=include_ties,
                                      conversational=format == "conversational"), "preferences.jsonl")


@router.get("/export/kto", response_class=StreamingResponse, responses=errors(403) | {
    200: {"content": {JSONL: {"schema": {"type": "string"}}},
          "description": "One JSON object a line: prompt, completion, label (true: thumb up) and provenance."}})
def export_kto(admin: CurrentAdmin, where: FilterDep,
               format: Annotated[Literal["standard", "conversational"], Query(
                   description="standard: prompt and completion as text; conversational: prompt as a list of "
                               "messages, completion as the assistant's message")] = "standard",
               ) -> StreamingResponse:
    """Thumbs up and down as JSONL in TRL's unpaired preference (KTO) format (admins only)."""
    return _jsonl(export.stream_jsonl(export.kto_rows, where, conversational=format == "conversational"),
                  "kto.jsonl")


@router.get("/export/scores", response_class=StreamingResponse, responses=errors(403) | {
    200: {"content": {JSONL: {"schema": {"type": "string"}}},
          "description": "One JSON object a line: prompt, response, score and provenance."}})
def export_scores(admin: CurrentAdmin, where: FilterDep) -> StreamingResponse:
    """Per-response scores as JSONL (admins only)."""
    return _jsonl(export.stream_jsonl(export.score_rows, where), "scores.jsonl")
