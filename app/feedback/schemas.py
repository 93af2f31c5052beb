"""What REST clients send and receive for items, ratings and exports."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.types import Id, IdText, Int, Text, text_limits
from app.feedback.items import MAX_OVERLAP, MAX_SOURCE_CHARS
from app.feedback.ratings import MAX_COMMENT_CHARS, MAX_SCORE, MIN_SCORE
from app.models import ItemKind
from app.prompts.schemas import Message
from app.settings import get_settings

MAX_ITEMS_PER_REQUEST = 500
MAX_RATINGS_PER_REQUEST = 500
MAX_RESPONSES_PER_ITEM = 16
MAX_LEASES_PER_REQUEST = 100

Score = Annotated[int, Field(ge=MIN_SCORE, le=MAX_SCORE, strict=True)]


# Items a client brings ------------------------------------------------------

class ResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(**text_limits(get_settings().max_text_chars, required=True))
    source: Text = Field("", description='A label for the model that wrote it ("gpt-x", "vendor-7").',
                         **text_limits(MAX_SOURCE_CHARS))


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[Text, Field(**text_limits(get_settings().max_text_chars, required=True))] | None = Field(
        None, description="The prompt text (a new prompt); or give messages or prompt_id.")
    messages: list[Message] | None = Field(
        None, min_length=1, max_length=64,
        description="The conversation the responses answer (a new prompt), ending with a user turn; "
                    "instead of prompt.")
    prompt_id: Id | None = Field(None, description="An existing prompt, instead of prompt or messages.")
    responses: list[ResponseIn] = Field(
        min_length=1, max_length=MAX_RESPONSES_PER_ITEM,
        description="One response to score, or two or more to compare.")
    overlap: Int | None = Field(None, description="How many raters must answer it (default: the server's).",
                                json_schema_extra={"minimum": 1, "maximum": MAX_OVERLAP})

    @model_validator(mode="after")
    def _one_prompt(self) -> "ItemIn":
        if sum(given is not None for given in (self.prompt, self.messages, self.prompt_id)) != 1:
            raise ValueError("give exactly one of prompt, messages and prompt_id")
        return self


class ItemsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ItemIn] = Field(min_length=1, max_length=MAX_ITEMS_PER_REQUEST)


class ItemIds(BaseModel):
    ids: list[int] = Field(description="The new items' ids, in the order they were sent.")


# Leasing and rating ----------------------------------------------------------

class ShownResponse(BaseModel):
    id: int = Field(description="The response's id; name it in preferred_response_id and scores.")
    text: str


class LeasedItemOut(BaseModel):
    item_id: int
    kind: ItemKind
    prompt: str = Field(description="The prompt's text: for a conversation, its last user turn.")
    messages: list[Message] = Field(description="The whole conversation the responses answer (a plain prompt "
                                                "is one user turn).")
    responses: list[ShownResponse] = Field(description="In the order to show them (shuffled per lease).")
    lease_expires_at: datetime


class LeaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: Int = Field(description=f"How many items to hold at once (1..{MAX_LEASES_PER_REQUEST}).",
                       ge=1, le=MAX_LEASES_PER_REQUEST)


class LeasedItems(BaseModel):
    items: list[LeasedItemOut] = Field(description="Fewer than asked when fewer are open; maybe none.")


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: Id
    verdict: Literal["preferred", "tie", "both_bad"] | None = Field(
        None, description="For compare items; omit for score items.")
    preferred_response_id: Id | None = Field(None, description='With verdict "preferred".')
    scores: dict[IdText, Score] = Field(
        default_factory=dict,
        description=f"Response id -> {MIN_SCORE}..{MAX_SCORE}; required for score items.")
    comment: Text = Field("", **text_limits(MAX_COMMENT_CHARS))
    time_spent_ms: Int | None = Field(None, description="Measured by the client; else lease to answer.")
    thumb: Literal["up", "down"] | None = Field(
        None, description="For an item with one response: instead of (or with) its score.")


class BulkRatingIn(RatingIn):
    idempotency_key: Text | None = Field(None, description="As the Idempotency-Key header of POST /ratings.")


class BulkRatingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ratings: list[BulkRatingIn] = Field(min_length=1, max_length=MAX_RATINGS_PER_REQUEST)


class RatingOut(BaseModel):
    id: int
    item_id: int
    verdict: Literal["preferred", "tie", "both_bad"] | None
    preferred_response_id: int | None
    scores: dict[str, int]
    thumb: Literal["up", "down"] | None = None
    comment: str
    time_spent_ms: int | None
    created_at: datetime


class RatingAndNextOut(RatingOut):
    next_item: LeasedItemOut | None = Field(
        None, description="With ?lease_next=true: your next item, already leased; null when nothing is left.")


class BulkRatingsOut(BaseModel):
    ratings: list[RatingOut] = Field(description="In the order they were sent.")
    created: int = Field(description="How many are new; the rest replayed earlier answers.")


# Admin views -------------------------------------------------------------------

class ProvenanceOut(BaseModel):
    """One response as the rater saw it, in display order."""

    response_id: int
    checkpoint_id: int | None
    source: str


class RatingRecord(RatingOut):
    rater_id: int
    rater: str
    shown: list[ProvenanceOut]


class RatingPage(BaseModel):
    ratings: list[RatingRecord]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end.")


class GoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Literal["preferred", "tie", "both_bad"]
    preferred_response_id: Id | None = Field(None, description='The right response, with verdict "preferred".')


class GoldOut(GoldIn):
    item_id: int
    overlap: int = Field(description="gold items are open to every rater: the most raters an item takes")
