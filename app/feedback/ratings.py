"""Storing answers: validated, exactly once, with the provenance of what was shown."""

import hashlib
import json
from dataclasses import asdict, dataclass, field

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, LeaseExpired, NotFound
from app.feedback.leasing import claims_by_others
from app.models import Item, ItemKind, ItemResponse, Lease, Rating, Sample, Verdict, utcnow

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


def check_rating(kind: ItemKind, sample_ids: set[int], answer: RatingInput) -> None:
    """Shape rules for one answer to an item with these responses; raises InvalidInput naming the field."""
    if kind == ItemKind.compare:
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


# The hot path's statements, built once (see app.feedback.leasing).
_USER, _ITEM = bindparam("user_id"), bindparam("item_id")
_EARLIER = select(Rating.id).where(
    Rating.user_id == _USER,
    or_(Rating.item_id == _ITEM, Rating.idempotency_key == bindparam("key"))).limit(1)
_ITEM_AND_LEASE = (
    select(Item.kind, Item.answers, Item.overlap, Lease.id.label("lease_id"),
           Lease.created_at.label("leased_at"), Lease.expires_at, Lease.skipped_at, Lease.display_order)
    .outerjoin(Lease, and_(Lease.item_id == Item.id, Lease.user_id == _USER))
    .where(Item.id == _ITEM))
# Answers of the same item (and its leases) go one at a time.
_ITEM_AND_LEASE_LOCKED = _ITEM_AND_LEASE.with_for_update(of=Item.__table__)
_SHOWN = (select(ItemResponse.position, Sample.id, Sample.checkpoint_id, Sample.source, Sample.generation)
          .join(Sample, Sample.id == ItemResponse.sample_id)
          .where(ItemResponse.item_id == _ITEM))
_INSERT = {name: insert(Rating).on_conflict_do_nothing().returning(Rating.id)
           for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))}
_END_LEASE = delete(Lease).where(Lease.id == bindparam("lease_id"))
_COUNT_ANSWER = update(Item).where(Item.id == _ITEM).values(
    answers=Item.answers + 1, done=Item.answers + 1 >= Item.overlap)


def _earlier(db: Session, user_id: int, item_id: int, idempotency_key: str | None) -> Rating | None:
    """The rater's earlier answer to this item, or under this key."""
    found = db.connection().scalar(_EARLIER, {"user_id": user_id, "item_id": item_id, "key": idempotency_key})
    return db.get(Rating, found) if found is not None else None


def submit_rating(db: Session, user_id: int, answer: RatingInput,
                  idempotency_key: str | None = None) -> StoredRating:
    """Store one answer exactly once; a retry (same key or item, same body) returns the first.

    The raters' hot path: Core statements on the session's connection, six for a new
    answer (earlier answer; the item with the caller's lease, under a row lock; its
    responses; insert; end the lease; count the answer)."""
    request_hash = answer.request_hash()
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 128:
        raise InvalidInput("Idempotency-Key must be 1-128 characters", field="Idempotency-Key")
    earlier = _earlier(db, user_id, answer.item_id, idempotency_key)
    if earlier is not None:
        # A double click or a retry: same answer, same result.
        return _replay(earlier, request_hash)

    conn = db.connection()
    dialect = conn.dialect.name
    ids = {"user_id": user_id, "item_id": answer.item_id}
    item = conn.execute(_ITEM_AND_LEASE_LOCKED if dialect == "postgresql" else _ITEM_AND_LEASE, ids).first()
    if item is None:
        raise NotFound(f"no item {answer.item_id}")
    shown = {row.position: row for row in conn.execute(_SHOWN, ids)}
    check_rating(item.kind, {row.id for row in shown.values()}, answer)

    now = utcnow()
    refusal = None
    if item.lease_id is None or item.skipped_at is not None:
        refusal = f"item {answer.item_id} is not leased to you; ask for the next item"
    elif item.expires_at <= now and \
            item.answers + claims_by_others(db, answer.item_id, user_id, now) >= item.overlap:
        refusal = f"your lease on item {answer.item_id} expired and other raters have answered it"
    if refusal:
        # A copy of this answer (a retry racing its first attempt) may have been stored
        # since the lookup above, ending the lease: then this is a replay.
        if (earlier := _earlier(db, user_id, answer.item_id, idempotency_key)) is not None:
            return _replay(earlier, request_hash)
        raise LeaseExpired(refusal)

    values = dict(
        item_id=answer.item_id,
        user_id=user_id,
        verdict=answer.verdict,
        preferred_sample_id=answer.preferred_response_id,
        scores={str(k): v for k, v in answer.scores.items()},
        comment=answer.comment,
        time_spent_ms=answer.time_spent_ms
        if answer.time_spent_ms is not None
        else int((now - item.leased_at).total_seconds() * 1000),
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        provenance=[
            {"position": p, "sample_id": shown[p].id, "checkpoint_id": shown[p].checkpoint_id,
             "source": shown[p].source, "generation": shown[p].generation}
            for p in item.display_order or sorted(shown)
        ],
        created_at=now,
    )
    rating_id = conn.scalar(_INSERT[dialect], values)
    if rating_id is None:
        # A concurrent retry of the same answer won the race; return its result.
        winner = _earlier(db, user_id, answer.item_id, idempotency_key)
        if winner is None:
            raise Conflict("this answer collided with another one; send it again")
        return _replay(winner, request_hash)
    conn.execute(_END_LEASE, {"lease_id": item.lease_id})
    conn.execute(_COUNT_ANSWER, ids)
    # Core wrote behind the session's back: objects it already holds are stale now.
    if (stale_item := db.identity_map.get(db.identity_key(Item, answer.item_id))) is not None:
        db.expire(stale_item)
    if (gone_lease := db.identity_map.get(db.identity_key(Lease, item.lease_id))) is not None:
        db.expunge(gone_lease)
    return StoredRating(Rating(id=rating_id, **values), created=True)
