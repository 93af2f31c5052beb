"""Handing items to raters: one atomic lease per request, fair under concurrency.

An item is open to a rater while it is not done, the rater has neither answered
nor skipped it, and its answers plus the other raters' live leases stay under
its overlap. On PostgreSQL the candidate row is locked with SKIP LOCKED and the
lease is written by a statement that re-counts the claims itself (a fresh
snapshot: a lease committed after the candidate query began is seen), so
concurrent raters never overfill an item; on SQLite every transaction holds the
write lock (see app.db), which is enough.

This is the raters' hot path, so it speaks SQLAlchemy Core on the session's
connection: the held leases, the candidates, their responses, and per new lease one
statement that writes it and marks its item full when it fills it (two on SQLite):
four for one new lease, two to resume a held one.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import JSON, Connection, and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import Item, ItemKind, ItemResponse, Lease, Prompt, Rating, Sample, utcnow
from app.models.base import UTCDateTime
from app.settings import get_settings


@dataclass(frozen=True)
class ShownResponse:
    position: int
    sample_id: int
    text: str


@dataclass(frozen=True)
class LeasedItem:
    """An item as one rater sees it under one lease: responses in display order."""

    item_id: int
    kind: ItemKind
    prompt: str
    # The conversation the responses answer; a plain prompt is one user turn.
    messages: list[dict[str, str]]
    responses: list[ShownResponse]
    lease_id: int
    created_at: datetime
    expires_at: datetime


def _live(now):
    return and_(Lease.expires_at > now, Lease.skipped_at.is_(None))


def _others_live(item_id, user_id, now):
    return (select(func.count()).select_from(Lease)
            .where(Lease.item_id == item_id, Lease.user_id != user_id, _live(now))
            .scalar_subquery())


def _candidates(user_id, now):
    mine_answered = exists().where(Rating.item_id == Item.id, Rating.user_id == user_id)
    mine_skipped = exists().where(
        Lease.item_id == Item.id, Lease.user_id == user_id, Lease.skipped_at.is_not(None)
    )
    return (
        select(Item.id)
        .where(Item.done.is_(False), ~mine_answered, ~mine_skipped,
               Item.answers + _others_live(Item.id, user_id, now) < Item.overlap)
        # Oldest first: raters converge on the same items, so items with an
        # overlap above one are finished before fresh ones are opened.
        .order_by(Item.id)
    )


def _claimable(user_id, now):
    """_candidates without the items live leases fill (the caller's own included, which
    it resumes instead), cheaply: with many raters holding many leases, the oldest open
    items are full and the lease query would otherwise count each one's leases."""
    return _candidates(user_id, now).where(or_(Item.full_until.is_(None), Item.full_until <= now))


# The hot path's statements are built once, with bound parameters: building and
# cache-keying a statement per request cost as much as running it.
_USER, _ITEM = bindparam("user_id"), bindparam("item_id")
_NOW = bindparam("now", type_=UTCDateTime())
_CLAIMS_BY_OTHERS = select(_others_live(_ITEM, _USER, _NOW))
# Open items above `after`, oldest first. A transaction that leases several items
# takes their row locks in ascending id order, as answers do (ratings.store_answers):
# SKIP LOCKED still waits on a row whose newer version another transaction holds,
# and locks taken in one order on both sides cannot wait on each other in a cycle.
_NEXT_OPEN = (_claimable(_USER, _NOW)
              .where(Item.id > bindparam("after"), Item.id.not_in(bindparam("passed", expanding=True)))
              .limit(bindparam("limit")))
_NEXT_OPEN_LOCKED = _NEXT_OPEN.with_for_update(skip_locked=True, of=Item.__table__)
_HELD = (
    select(Lease.id, Lease.item_id, Lease.display_order, Lease.created_at, Lease.expires_at)
    .join(Item, Item.id == Lease.item_id)
    .where(Lease.user_id == _USER, _live(_NOW), Item.done.is_(False))
    .order_by(Lease.id)
    .limit(bindparam("limit"))
)
_SHOWN = (
    select(ItemResponse.item_id, Item.kind, Prompt.text.label("prompt"), Prompt.messages, ItemResponse.position,
           Sample.id.label("sample_id"), Sample.text)
    .join(Item, Item.id == ItemResponse.item_id)
    .join(Prompt, Prompt.id == Item.prompt_id)
    .join(Sample, Sample.id == ItemResponse.sample_id)
    .where(ItemResponse.item_id.in_(bindparam("item_ids", expanding=True)))
)


_EXPIRES = bindparam("expires", type_=UTCDateTime())


def _lease_if_room(insert):
    """Write (or renew an expired) lease if the item still has room, returning its id and item."""
    values = select(_ITEM, _USER, _NOW, _EXPIRES, bindparam("order", type_=JSON())).where(
        Item.id == _ITEM, Item.answers + _others_live(_ITEM, _USER, _NOW) < Item.overlap)
    columns = ["item_id", "user_id", "created_at", "expires_at", "display_order"]
    statement = insert(Lease).from_select(columns, values)
    return statement.on_conflict_do_update(
        index_elements=["item_id", "user_id"],
        set_={name: statement.excluded[name] for name in columns[2:]} | {"skipped_at": None},
    ).returning(Lease.id, Lease.item_id)


def _mark_if_full(leased_item_id):
    """Mark the item the caller just leased full, until its first live lease expires, if the
    caller's lease (live until :expires) and the others' live ones fill it. The caller's own
    lease is counted from the parameters, not read: inside one PostgreSQL statement with the
    insert, the new row is not visible yet."""
    others_first = (select(func.min(Lease.expires_at))
                    .where(Lease.item_id == Item.id, Lease.user_id != _USER, _live(_NOW)).scalar_subquery())
    return (update(Item)
            .where(Item.id == leased_item_id, Item.answers + _others_live(Item.id, _USER, _NOW) + 1 >= Item.overlap)
            .values(full_until=case((others_first < _EXPIRES, others_first), else_=_EXPIRES)))


_leased_now = _lease_if_room(postgresql.insert).cte("leased")
# PostgreSQL leases and marks in one round trip (a data-modifying WITH); SQLite has no such
# WITH and runs the two statements.
_LEASE_AND_MARK = select(_leased_now.c.id).add_cte(_mark_if_full(_leased_now.c.item_id).cte("marked"))
_LEASE_IF_ROOM_SQLITE, _MARK_IF_FULL_SQLITE = _lease_if_room(sqlite.insert), _mark_if_full(_ITEM)


def claims_by_others(db: Session, item_id: int, user_id: int, now: datetime) -> int:
    return db.connection().scalar(_CLAIMS_BY_OTHERS, {"item_id": item_id, "user_id": user_id, "now": now}) or 0


def _shown(conn: Connection, item_ids: list[int]) -> dict[int, tuple[ItemKind, str, list, dict[int, ShownResponse]]]:
    """Kind, prompt, conversation and responses by position of each item, in one query."""
    rows = conn.execute(_SHOWN, {"item_ids": item_ids})
    shown: dict[int, tuple[ItemKind, str, list, dict[int, ShownResponse]]] = {}
    for row in rows:
        messages = row.messages or [{"role": "user", "content": row.prompt}]
        entry = shown.setdefault(row.item_id, (row.kind, row.prompt, messages, {}))
        entry[3][row.position] = ShownResponse(row.position, row.sample_id, row.text)
    return shown


def _leased(shown, item_id: int, lease_id: int, order: list[int], created_at: datetime,
            expires_at: datetime) -> LeasedItem:
    kind, prompt, messages, by_position = shown[item_id]
    order = order or sorted(by_position)
    return LeasedItem(item_id=item_id, kind=kind, prompt=prompt, messages=messages,
                      responses=[by_position[p] for p in order],
                      lease_id=lease_id, created_at=created_at, expires_at=expires_at)


def _held(conn: Connection, user_id: int, now: datetime, limit: int) -> list[LeasedItem]:
    """Live leases the rater already holds (a reload shows the same item)."""
    rows = conn.execute(_HELD, {"user_id": user_id, "now": now, "limit": limit}).all()
    if not rows:
        return []
    shown = _shown(conn, [row.item_id for row in rows])
    return [_leased(shown, row.item_id, row.id, row.display_order, row.created_at, row.expires_at)
            for row in rows]


def lease_next_item(db: Session, user_id: int, *, rng: random.Random | None = None) -> LeasedItem | None:
    leased = lease_items(db, user_id, 1, rng=rng)
    return leased[0] if leased else None


def lease_items(db: Session, user_id: int, count: int, *,
                rng: random.Random | None = None) -> list[LeasedItem]:
    """Up to `count` items: the live leases the rater already holds first, then new ones.

    Many at once are for clients that work offline and upload later. New leases come
    from one candidate query per round (a round falls short only when other raters
    fill candidates in the meantime), and their items are locked in ascending id order."""
    conn, now = db.connection(), utcnow()
    leased = _held(conn, user_id, now, count)
    held, after = [one.item_id for one in leased], 0
    while len(leased) < count:
        item_ids = list(conn.scalars(_NEXT_OPEN_LOCKED if conn.dialect.name == "postgresql" else _NEXT_OPEN, {
            "user_id": user_id, "now": now, "passed": held, "after": after, "limit": count - len(leased)}))
        if not item_ids:
            break
        leased += _lease_those_with_room(conn, user_id, now, item_ids, rng or random)
        after = item_ids[-1]
    return leased


def _lease_those_with_room(conn: Connection, user_id: int, now: datetime, item_ids: list[int],
                           rng) -> list[LeasedItem]:
    """Lease the rater those of these items that still have room (others may have filled
    some since the candidate query began)."""
    dialect = conn.dialect.name
    expires = now + timedelta(seconds=get_settings().lease_seconds)
    shown = _shown(conn, item_ids)
    leased = []
    for item_id in item_ids:
        order = sorted(shown[item_id][3])
        rng.shuffle(order)
        values = {"item_id": item_id, "user_id": user_id, "now": now, "expires": expires, "order": order}
        if dialect == "postgresql":
            lease_id = conn.scalar(_LEASE_AND_MARK, values)
        elif (lease_id := conn.scalar(_LEASE_IF_ROOM_SQLITE, values)) is not None:
            conn.execute(_MARK_IF_FULL_SQLITE, values)
        if lease_id is not None:
            leased.append(_leased(shown, item_id, lease_id, order, now, expires))
    return leased


def skip_item(db: Session, user_id: int, item_id: int) -> None:
    lease = db.scalar(select(Lease).where(Lease.item_id == item_id, Lease.user_id == user_id))
    if lease is None:
        lease = Lease(item_id=item_id, user_id=user_id, expires_at=utcnow(), display_order=[])
        db.add(lease)
    lease.skipped_at = utcnow()
    # Its slot is free again: the item is no longer full.
    db.execute(update(Item).where(Item.id == item_id).values(full_until=None))
    db.flush()


def open_items_for(db: Session, user_id: int) -> int:
    """How many items this rater could still be given (for the progress line)."""
    return db.scalar(select(func.count()).select_from(_candidates(user_id, utcnow()).subquery())) or 0


def open_items_up_to(db: Session, user_id: int, cap: int) -> int:
    """open_items_for, but it stops counting at cap: a cheap progress line on a large pool."""
    candidates = _candidates(user_id, utcnow()).order_by(None).limit(cap)
    return db.scalar(select(func.count()).select_from(candidates.subquery())) or 0
