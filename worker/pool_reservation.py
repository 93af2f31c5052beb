"""Reservations: how generation workers share one pool without sampling the same deficit twice.

A refill plans under `TransactionLock.refill_pool`, one planner at a time across every worker:
a source's room is its target less its open items and the items live reservations will bring.
The planner reserves what it will sample (a row per source) and commits, samples outside any
transaction, then writes its items and deletes its reservations in one transaction under the
same lock, clamped again to each source's room: open items never exceed the target, even when
a reservation ended under a worker still sampling (it outlived `pool_reservation_seconds`, or
its connection dropped).

A reservation counts while its worker lives. On PostgreSQL the worker's connection holds a
session advisory lock keyed by the reservation's id from the transaction that writes the row,
so a killed worker's reservation ends with its connection. On every backend it also ends
`pool_reservation_seconds` after it was made: the bound for a machine lost without closing
its connection, and the only one on SQLite.
"""

from datetime import timedelta

from sqlalchemy import Connection, delete, func, or_, select, text
from sqlalchemy.orm import Session

from app.db import ADVISORY_LOCK_SPACE
from app.models import Item, PoolReservation, Prompt, utcnow
from app.settings import get_settings

# Advisory locks (LIVE_LOCK_SPACE, reservation id): held by the reserving worker's connection.
LIVE_LOCK_SPACE = ADVISORY_LOCK_SPACE + 1
# pg_locks shows a two-key advisory lock as (classid, objid, objsubid 2); it lists every
# database on the server, so this one's is picked out.
LIVE_RESERVATION_IDS = text(
    "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
    "AND classid = :space AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")


def room_per_source(db: Session, sources: list[str]) -> dict[str, int]:
    """How many more items each source may take: its target less its open items and the items
    live reservations will bring. Under the refill lock; clears reservations that ended."""
    dead = PoolReservation.expires_at <= utcnow()
    if db.get_bind().dialect.name == "postgresql":
        live = set(db.scalars(LIVE_RESERVATION_IDS, {"space": LIVE_LOCK_SPACE}))
        dead = or_(dead, PoolReservation.id.not_in(live))
    db.execute(delete(PoolReservation).where(dead))
    open_items = dict(db.execute(
        select(Prompt.source, func.count(Item.id)).join(Item, Item.prompt_id == Prompt.id)
        .where(Item.done.is_(False), Prompt.source.in_(sources)).group_by(Prompt.source)).tuples().all())
    reserved = dict(db.execute(
        select(PoolReservation.source, func.sum(PoolReservation.items))
        .where(PoolReservation.source.in_(sources)).group_by(PoolReservation.source)).tuples().all())
    target = get_settings().pool_target
    return {source: max(0, target - open_items.get(source, 0) - reserved.get(source, 0)) for source in sources}


def reserve(db: Session, items_per_source: dict[str, int]) -> list[int]:
    """Reserve items for sources, held by this session's connection; under the refill lock,
    committed by the caller. Returns the reservations' ids, for `release`."""
    expires_at = utcnow() + timedelta(seconds=get_settings().pool_reservation_seconds)
    rows = [PoolReservation(source=source, items=n, expires_at=expires_at)
            for source, n in items_per_source.items() if n > 0]
    db.add_all(rows)
    db.flush()
    if db.get_bind().dialect.name == "postgresql":
        for row in rows:
            db.execute(select(func.pg_advisory_lock(LIVE_LOCK_SPACE, row.id)))
    return [row.id for row in rows]


def drop_reservations(db: Session | Connection, ids: list[int]) -> None:
    db.execute(delete(PoolReservation).where(PoolReservation.id.in_(ids)))


def release(connection: Connection, ids: list[int]) -> None:
    """End reservations, written or not: the row goes, and the connection lets go of its locks
    before it returns to the engine's pool (a pooled connection keeps session locks)."""
    if connection.invalidated:  # the server dropped its locks with it: the rows no longer count
        return
    with connection.begin():
        drop_reservations(connection, ids)
        if connection.dialect.name == "postgresql":
            for reservation_id in ids:
                connection.execute(select(func.pg_advisory_unlock(LIVE_LOCK_SPACE, reservation_id)))
