"""Storing answers: validated, exactly once, with the provenance of what was shown."""

import hashlib
import json
from dataclasses import asdict, dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, LeaseExpired, NotFound
from app.feedback.leasing import claims_by_others, load_item
from app.models import Item, ItemKind, Lease, Rating, Verdict, utcnow

MIN_SCORE, MAX_SCORE = 1, 7
MAX_COMMENT_CHARS = 2000


@dataclass
class RatingInput:
    item_id: int
    verdict: str | None = None
    preferred_response_id: int | None = None
    # {sample id: 1..7}
    scores: dict[int, int] = field(default_factory=dict)
    comment: str = ""
    time_spent_ms: int | None = None

    def request_hash(self) -> str:
        body = asdict(self) | {"time_spent_ms": None, "scores": sorted(self.scores.items())}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class StoredRating:
    rating: Rating
    created: bool  # False when a retry returned the first result


def check_rating(item: Item, answer: RatingInput) -> None:
    """Shape rules for one answer to one item; raises InvalidInput naming the field."""
    sample_ids = {r.sample_id for r in item.responses}
    if item.kind == ItemKind.compare:
        if answer.verdict not in {v.value for v in Verdict}:
            raise InvalidInput("verdict must be preferred, tie or both_bad", field="verdict")
        if answer.verdict == Verdict.preferred:
            if answer.preferred_response_id not in sample_ids:
                raise InvalidInput("preferred_response_id must be one of the item's responses",
                                   field="preferred_response_id")
        elif answer.preferred_response_id is not None:
            raise InvalidInput("preferred_response_id is only for verdict 'preferred'",
                               field="preferred_response_id")
    else:
        if answer.verdict is not None or answer.preferred_response_id is not None:
            raise InvalidInput("score items take scores, not a verdict", field="verdict")
        if set(answer.scores) != sample_ids:
            raise InvalidInput("score items need a score for their response", field="scores")
    for sample_id, score in answer.scores.items():
        if sample_id not in sample_ids:
            raise InvalidInput(f"scores names response {sample_id}, not in this item", field="scores")
        if isinstance(score, bool) or not isinstance(score, int) or not MIN_SCORE <= score <= MAX_SCORE:
            raise InvalidInput(f"scores must be whole numbers {MIN_SCORE}..{MAX_SCORE}", field="scores")
    if len(answer.comment) > MAX_COMMENT_CHARS or "\x00" in answer.comment:
        raise InvalidInput(f"comment must be at most {MAX_COMMENT_CHARS} characters, no NUL",
                           field="comment")
    if answer.time_spent_ms is not None and not 0 <= answer.time_spent_ms <= 86_400_000:
        raise InvalidInput("time_spent_ms must be between 0 and one day", field="time_spent_ms")


def _replay(existing: Rating, request_hash: str) -> StoredRating:
    if existing.request_hash != request_hash:
        raise Conflict("this idempotency key (or this item) was already used with a different answer")
    return StoredRating(existing, created=False)


def submit_rating(db: Session, user_id: int, answer: RatingInput,
                  idempotency_key: str | None = None) -> StoredRating:
    request_hash = answer.request_hash()
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 128:
            raise InvalidInput("Idempotency-Key must be 1-128 characters", field="Idempotency-Key")
        existing = db.scalar(select(Rating).where(Rating.user_id == user_id,
                                                  Rating.idempotency_key == idempotency_key))
        if existing is not None:
            return _replay(existing, request_hash)

    # Lock the item: answers of the same item (and its leases) go one at a time.
    item = load_item(db, answer.item_id, lock=True)
    if item is None:
        raise NotFound(f"no item {answer.item_id}")
    existing = db.scalar(select(Rating).where(Rating.item_id == item.id, Rating.user_id == user_id))
    if existing is not None:
        # A double click or a retry without a key: same answer, same result.
        return _replay(existing, request_hash)
    check_rating(item, answer)

    now = utcnow()
    lease = db.scalar(select(Lease).where(Lease.item_id == item.id, Lease.user_id == user_id))
    if lease is None or lease.skipped_at is not None:
        raise LeaseExpired(f"item {item.id} is not leased to you; ask for the next item")
    if lease.expires_at <= now and item.answers + claims_by_others(db, item.id, user_id, now) >= item.overlap:
        raise LeaseExpired(f"your lease on item {item.id} expired and other raters have answered it")

    by_position = {r.position: r.sample for r in item.responses}
    order = lease.display_order or sorted(by_position)
    rating = Rating(
        item_id=item.id,
        user_id=user_id,
        verdict=answer.verdict,
        preferred_sample_id=answer.preferred_response_id,
        scores={str(k): v for k, v in answer.scores.items()},
        comment=answer.comment,
        time_spent_ms=answer.time_spent_ms
        if answer.time_spent_ms is not None
        else int((now - lease.created_at).total_seconds() * 1000),
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        provenance=[
            {"position": p, "sample_id": by_position[p].id,
             "checkpoint_id": by_position[p].checkpoint_id, "source": by_position[p].source,
             "generation": by_position[p].generation}
            for p in order
        ],
    )
    try:
        with db.begin_nested():
            db.add(rating)
            db.flush()
    except IntegrityError:
        # A concurrent retry of the same answer won the race; return its result.
        winner = db.scalar(select(Rating).where(
            Rating.user_id == user_id,
            (Rating.item_id == item.id) | (Rating.idempotency_key == idempotency_key)
            if idempotency_key else Rating.item_id == item.id,
        ))
        if winner is None:
            raise
        return _replay(winner, request_hash)
    db.execute(delete(Lease).where(Lease.id == lease.id))
    item.answers += 1
    item.done = item.answers >= item.overlap
    db.flush()
    return StoredRating(rating, created=True)
