"""Storing answers: validated, exactly once, with the provenance of what was shown."""

import hashlib
import json
from dataclasses import asdict, dataclass, field

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, LeaseExpired, NotFound, TuneloopError
from app.feedback.leasing import claims_by_others
from app.models import Item, ItemKind, ItemResponse, Lease, Rating, Sample, Verdict, utcnow

MIN_SCORE, MAX_SCORE = 1, 7
THUMBS = ("up", "down")
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
    thumb: str | None = None  # "up" or "down", on an item with one response

    def request_hash(self) -> str:
        body = asdict(self) | {"time_spent_ms": None, "scores": sorted(self.scores.items())}
        if self.thumb is None:  # the hash of an answer without one is what it was before thumbs
            del body["thumb"]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class StoredRating:
    rating: Rating
    created: bool  # False when a retry returned the first result


def check_rating(kind: ItemKind, sample_ids: set[int], answer: RatingInput) -> None:
    """Shape rules for one answer to an item with these responses; raises InvalidInput naming the field."""
    if answer.thumb is not None:
        if answer.thumb not in THUMBS:
            raise InvalidInput("thumb must be up or down", field="thumb")
        if kind == ItemKind.compare or len(sample_ids) != 1:
            raise InvalidInput("a thumb is for items with one response", field="thumb")
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
        if set(answer.scores) != sample_ids and not (answer.thumb and not answer.scores):
            raise InvalidInput("score items need a score for their response, or a thumb", field="scores")
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


# The hot path's statements, built once (see app.feedback.leasing).
_USER, _ITEM, _KEY = bindparam("user_id"), bindparam("item_id"), bindparam("key")
_ITEMS, _KEYS = bindparam("item_ids", expanding=True), bindparam("keys", expanding=True)
_EARLIER = select(Rating.id).where(
    Rating.user_id == _USER, or_(Rating.item_id == _ITEM, Rating.idempotency_key == _KEY)).limit(1)
_EARLIER_ANY = select(Rating.id, Rating.item_id, Rating.idempotency_key).where(
    Rating.user_id == _USER, or_(Rating.item_id.in_(_ITEMS), Rating.idempotency_key.in_(_KEYS)))
# One row per response: the item, the caller's lease on it, and the response's sample.
_ITEMS_AND_LEASES = (
    select(Item.id, Item.kind, Item.answers, Item.overlap, Lease.id.label("lease_id"),
           Lease.created_at.label("leased_at"), Lease.expires_at, Lease.skipped_at, Lease.display_order,
           ItemResponse.position, Sample.id.label("sample_id"), Sample.checkpoint_id, Sample.source,
           Sample.generation)
    .join(ItemResponse, ItemResponse.item_id == Item.id)
    .join(Sample, Sample.id == ItemResponse.sample_id)
    .outerjoin(Lease, and_(Lease.item_id == Item.id, Lease.user_id == _USER))
    .where(Item.id.in_(_ITEMS))
    .order_by(Item.id, ItemResponse.position))
# Answers of the same item (and its leases) go one at a time; a transaction locks its
# items in ascending id order, as leasing does, so two never wait on each other.
_ITEMS_AND_LEASES_LOCKED = _ITEMS_AND_LEASES.with_for_update(of=Item.__table__)
_INSERT = {name: insert(Rating).on_conflict_do_nothing().returning(Rating.id, Rating.item_id)
           for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))}
_END_LEASES = delete(Lease).where(Lease.id.in_(bindparam("lease_ids", expanding=True)))
_COUNT_ANSWERS = update(Item).where(Item.id.in_(_ITEMS)).values(
    answers=Item.answers + 1, done=Item.answers + 1 >= Item.overlap)
# PostgreSQL ends the leases inside the count's statement (a data-modifying WITH), one
# round trip for both; SQLite has no such WITH and runs the two.
_COUNT_ANSWERS_ENDING_LEASES = _COUNT_ANSWERS.add_cte(_END_LEASES.cte("ended"))


def _earlier(db: Session, user_id: int, item_id: int, idempotency_key: str | None) -> int | None:
    """The id of the rater's earlier answer to this item, or under this key."""
    return db.connection().scalar(_EARLIER, {"user_id": user_id, "item_id": item_id, "key": idempotency_key})


def submit_rating(db: Session, user_id: int, answer: RatingInput,
                  idempotency_key: str | None = None) -> StoredRating:
    """Store one answer exactly once; a retry (same key or item, same body) returns the first."""
    outcome = store_answers(db, user_id, [(answer, idempotency_key)])[0]
    if isinstance(outcome, TuneloopError):
        raise outcome
    return outcome


def store_answers(db: Session, user_id: int,
                  rows: list[tuple[RatingInput, str | None]]) -> list[StoredRating | TuneloopError]:
    """Store each answer exactly once, or say why not: one outcome per row, in order.

    A retry (same key or item, same body) gets the first result back; so does a row
    repeating an earlier row of the same call. The raters' hot path, in Core
    statements on the session's connection, four for any number of new answers on
    PostgreSQL: earlier answers; the items with the caller's leases and their
    responses, locked in id order; one insert; end the leases and count the answers
    (two statements on SQLite). Answers that fail
    write nothing, but the caller decides whether the others stand (a bulk upload
    is all or none)."""
    conn = db.connection()
    dialect = conn.dialect.name
    outcomes: list[StoredRating | TuneloopError | None] = [None] * len(rows)
    hashes = [answer.request_hash() for answer, _ in rows]
    for index, (_, key) in enumerate(rows):
        if key is not None and not 1 <= len(key) <= 128:
            outcomes[index] = InvalidInput("Idempotency-Key must be 1-128 characters", field="Idempotency-Key")

    # A double click or a retry: same answer, same result.
    item_ids = sorted({answer.item_id for answer, _ in rows})
    keys = sorted({key for _, key in rows if key is not None})
    by_item, by_key = {}, {}
    for found in conn.execute(_EARLIER_ANY, {"user_id": user_id, "item_ids": item_ids, "keys": keys}):
        by_item[found.item_id] = found.id
        if found.idempotency_key is not None:
            by_key[found.idempotency_key] = found.id
    replays: dict[int, int] = {}  # row → id of the stored answer it repeats
    for index, (answer, key) in enumerate(rows):
        if outcomes[index] is None:
            earlier = by_key.get(key) if key is not None else None
            if (earlier := earlier or by_item.get(answer.item_id)) is not None:
                replays[index] = earlier

    fresh = [i for i in range(len(rows)) if outcomes[i] is None and i not in replays]
    locked = sorted({rows[i][0].item_id for i in fresh})
    items, shown = {}, {}
    if locked:
        statement = _ITEMS_AND_LEASES_LOCKED if dialect == "postgresql" else _ITEMS_AND_LEASES
        for row in conn.execute(statement, {"user_id": user_id, "item_ids": locked}):
            items[row.id] = row
            shown.setdefault(row.id, {})[row.position] = row

    now = utcnow()
    firsts: dict[tuple, int] = {}  # ("item", id) / ("key", key) → the row of this call that answers it
    repeats: dict[int, int] = {}  # row → the earlier row of this call it repeats
    inserts: dict[int, dict] = {}
    for index in fresh:
        answer, key = rows[index]
        first = firsts.get(("item", answer.item_id), firsts.get(("key", key)))
        if first is not None:
            repeats[index] = first
            continue
        try:
            inserts[index] = _answer_values(db, user_id, answer, key, hashes[index], items.get(answer.item_id),
                                            shown.get(answer.item_id, {}), now)
        except LeaseExpired as refusal:
            # A copy of this answer (a retry racing its first attempt) may have been stored
            # since the lookup above, ending the lease: then this is a replay.
            if (earlier := _earlier(db, user_id, answer.item_id, key)) is not None:
                replays[index] = earlier
            else:
                outcomes[index] = refusal
            continue
        except TuneloopError as error:
            outcomes[index] = error
            continue
        firsts[("item", answer.item_id)] = index
        if key is not None:
            firsts[("key", key)] = index

    if inserts:
        stored_ids = {row.item_id: row.id for row in conn.execute(_INSERT[dialect], list(inserts.values()))}
        answered = []
        for index, values in inserts.items():
            answer, key = rows[index]
            if answer.item_id in stored_ids:
                outcomes[index] = StoredRating(Rating(id=stored_ids[answer.item_id], **values), created=True)
                answered.append(answer.item_id)
            elif (winner := _earlier(db, user_id, answer.item_id, key)) is not None:
                replays[index] = winner  # a concurrent retry of the same answer won the race
            else:
                outcomes[index] = Conflict("this answer collided with another one; send it again")
        if answered:
            lease_ids = [items[item_id].lease_id for item_id in answered]
            if dialect == "postgresql":
                conn.execute(_COUNT_ANSWERS_ENDING_LEASES, {"lease_ids": lease_ids, "item_ids": answered})
            else:
                conn.execute(_END_LEASES, {"lease_ids": lease_ids})
                conn.execute(_COUNT_ANSWERS, {"item_ids": answered})
            # Core wrote behind the session's back: objects it already holds are stale now.
            for item_id, lease_id in zip(answered, lease_ids):
                if (stale_item := db.identity_map.get(db.identity_key(Item, item_id))) is not None:
                    db.expire(stale_item)
                if (gone_lease := db.identity_map.get(db.identity_key(Lease, lease_id))) is not None:
                    db.expunge(gone_lease)

    for index, rating_id in replays.items():
        outcomes[index] = _replay(db.get(Rating, rating_id), hashes[index])
    for index, first in repeats.items():
        outcome = outcomes[first]
        outcomes[index] = outcome if isinstance(outcome, TuneloopError) else _replay(outcome.rating, hashes[index])
    return outcomes


def _replay(existing: Rating, request_hash: str) -> StoredRating | Conflict:
    if existing.request_hash != request_hash:
        return Conflict("this idempotency key (or this item) was already used with a different answer")
    return StoredRating(existing, created=False)


def _answer_values(db: Session, user_id: int, answer: RatingInput, key: str | None, request_hash: str,
                   item, shown: dict, now) -> dict:
    """The rating row for one answer to a locked item, or the error that refuses it."""
    if item is None:
        raise NotFound(f"no item {answer.item_id}")
    check_rating(item.kind, {row.sample_id for row in shown.values()}, answer)
    if item.lease_id is None or item.skipped_at is not None:
        raise LeaseExpired(f"item {answer.item_id} is not leased to you; ask for the next item")
    if item.expires_at <= now and \
            item.answers + claims_by_others(db, answer.item_id, user_id, now) >= item.overlap:
        raise LeaseExpired(f"your lease on item {answer.item_id} expired and other raters have answered it")
    return dict(
        item_id=answer.item_id,
        user_id=user_id,
        verdict=answer.verdict,
        preferred_sample_id=answer.preferred_response_id,
        scores={str(k): v for k, v in answer.scores.items()},
        thumb=answer.thumb,
        comment=answer.comment,
        time_spent_ms=answer.time_spent_ms
        if answer.time_spent_ms is not None
        else int((now - item.leased_at).total_seconds() * 1000),
        idempotency_key=key,
        request_hash=request_hash,
        provenance=[
            {"position": p, "sample_id": shown[p].sample_id, "checkpoint_id": shown[p].checkpoint_id,
             "source": shown[p].source, "generation": shown[p].generation}
            for p in item.display_order or sorted(shown)
        ],
        created_at=now,
    )
