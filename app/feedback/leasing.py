"""Handing items to raters: one atomic lease per request, fair under concurrency.

An item is open to a rater while it is not done, the rater has neither answered
nor skipped it, and its answers plus the other raters' live leases stay under
its overlap. On PostgreSQL the candidate row is locked with SKIP LOCKED and the
count re-read under the lock, so concurrent raters never overfill an item; on
SQLite every transaction holds the write lock (see app.db), which is enough.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, selectinload

from app.models import Item, ItemResponse, Lease, Rating, utcnow
from app.settings import get_settings


@dataclass
class LeasedItem:
    item: Item
    lease: Lease

    @property
    def responses_in_display_order(self) -> list[ItemResponse]:
        by_position = {r.position: r for r in self.item.responses}
        return [by_position[p] for p in self.lease.display_order]


def _live(now: datetime):
    return and_(Lease.expires_at > now, Lease.skipped_at.is_(None))


def claims_by_others(db: Session, item_id: int, user_id: int, now: datetime) -> int:
    return db.scalar(
        select(func.count()).select_from(Lease).where(
            Lease.item_id == item_id, Lease.user_id != user_id, _live(now)
        )
    ) or 0


def _candidates(user_id: int, now: datetime):
    mine_answered = exists().where(Rating.item_id == Item.id, Rating.user_id == user_id)
    mine_skipped = exists().where(
        Lease.item_id == Item.id, Lease.user_id == user_id, Lease.skipped_at.is_not(None)
    )
    others_live = (
        select(func.count())
        .where(Lease.item_id == Item.id, Lease.user_id != user_id, _live(now))
        .scalar_subquery()
    )
    return (
        select(Item)
        .where(Item.done.is_(False), ~mine_answered, ~mine_skipped,
               Item.answers + others_live < Item.overlap)
        # Oldest first: raters converge on the same items, so items with an
        # overlap above one are finished before fresh ones are opened.
        .order_by(Item.id)
    )


def _resume(db: Session, user_id: int, now: datetime) -> LeasedItem | None:
    """A live lease the rater already holds (a reload shows the same item)."""
    row = db.execute(
        select(Lease, Item)
        .join(Item, Item.id == Lease.item_id)
        .where(Lease.user_id == user_id, _live(now), Item.done.is_(False))
        .order_by(Lease.id)
        .limit(1)
    ).first()
    return LeasedItem(item=row.Item, lease=row.Lease) if row else None


def lease_next_item(db: Session, user_id: int, *, rng: random.Random | None = None) -> LeasedItem | None:
    now = utcnow()
    held = _resume(db, user_id, now)
    if held:
        return held
    return _claim_next(db, user_id, now, [], rng or random)


def lease_items(db: Session, user_id: int, count: int, *,
                rng: random.Random | None = None) -> list[LeasedItem]:
    """Up to `count` items at once, for clients that work offline and upload later:
    the live leases the rater already holds first, then new ones by the same rule."""
    now = utcnow()
    rows = db.execute(
        select(Lease, Item).join(Item, Item.id == Lease.item_id)
        .where(Lease.user_id == user_id, _live(now), Item.done.is_(False))
        .order_by(Lease.id).limit(count)
    ).all()
    leased = [LeasedItem(item=row.Item, lease=row.Lease) for row in rows]
    taken = [row.Item.id for row in rows]
    while len(leased) < count:
        claimed = _claim_next(db, user_id, now, taken, rng or random)
        if claimed is None:
            break
        leased.append(claimed)
        taken.append(claimed.item.id)
    return leased


def _claim_next(db: Session, user_id: int, now: datetime, passed: list[int], rng) -> LeasedItem | None:
    """Lease the rater the first open item whose id is not in `passed`."""
    postgres = db.get_bind().dialect.name == "postgresql"
    query = _candidates(user_id, now).limit(1)
    if postgres:
        # populate_existing: the locked row's values win over a stale identity map.
        query = query.with_for_update(skip_locked=True, of=Item).execution_options(
            populate_existing=True)
    passed = list(passed)
    while True:
        item = db.scalar(query.where(Item.id.not_in(passed)) if passed else query)
        if item is None:
            return None
        # Under the row lock, re-count with a fresh snapshot: a lease committed
        # after this statement began is visible now.
        if not postgres or item.answers + claims_by_others(db, item.id, user_id, now) < item.overlap:
            break
        passed.append(item.id)
    return LeasedItem(item=item, lease=_take_lease(db, item, user_id, now, rng))


def _take_lease(db: Session, item: Item, user_id: int, now: datetime, rng) -> Lease:
    order = [r.position for r in item.responses]
    rng.shuffle(order)
    expires = now + timedelta(seconds=get_settings().lease_seconds)
    lease = db.scalar(select(Lease).where(Lease.item_id == item.id, Lease.user_id == user_id))
    if lease is None:
        lease = Lease(item_id=item.id, user_id=user_id)
        db.add(lease)
    lease.created_at, lease.expires_at, lease.display_order = now, expires, order
    db.flush()
    return lease


def skip_item(db: Session, user_id: int, item_id: int) -> None:
    lease = db.scalar(select(Lease).where(Lease.item_id == item_id, Lease.user_id == user_id))
    if lease is None:
        lease = Lease(item_id=item_id, user_id=user_id, expires_at=utcnow(), display_order=[])
        db.add(lease)
    lease.skipped_at = utcnow()
    db.flush()


def load_item(db: Session, item_id: int, *, lock: bool = False) -> Item | None:
    query = select(Item).where(Item.id == item_id).options(
        selectinload(Item.responses).selectinload(ItemResponse.sample)
    )
    if lock:
        query = query.execution_options(populate_existing=True)
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=Item)
    return db.scalar(query)


def open_items_for(db: Session, user_id: int) -> int:
    """How many items this rater could still be given (for the progress line)."""
    return db.scalar(select(func.count()).select_from(_candidates(user_id, utcnow()).subquery())) or 0


def open_items_up_to(db: Session, user_id: int, cap: int) -> int:
    """open_items_for, but it stops counting at cap: a cheap progress line on a large pool."""
    candidates = _candidates(user_id, utcnow()).order_by(None).limit(cap)
    return db.scalar(select(func.count()).select_from(candidates.subquery())) or 0
