"""Engine and session factory; the one place that knows about database URLs."""

import select as io_select
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from app.settings import get_settings


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            # Let SQLAlchemy, not the driver, open transactions (see _begin_immediate).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # WAL lets readers proceed while the one writer commits.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection) -> None:
            # Take the write lock up front: a read-then-write (leasing an item)
            # can then never act on a stale read. Readers still proceed in WAL.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_size=get_settings().db_pool_size, max_overflow=20)
    event.listen(engine, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(dbapi_connection, _record, _proxy) -> None:
    """Replace a pooled connection the database has closed (a restart), so a restart
    answers no 503s afterwards. A server that ends a session says so on its socket (an
    error message, then end of file), and nothing else arrives on an idle connection
    (tuneloop never LISTENs), so anything to read means closed; at worst it costs one
    needless reconnect. One poll, where pool_pre_ping would spend a round trip per
    request. While the database is down the reconnect fails and the request gets its 503."""
    if not dbapi_connection.closed:
        poller = io_select.poll()
        poller.register(dbapi_connection.fileno(), io_select.POLLIN)
        if not poller.poll(0):
            return
    raise DisconnectionError("the database closed this pooled connection")


# PostgreSQL advisory locks take two int keys: this first one keeps tuneloop's apart from
# any other application's on the same server.
ADVISORY_LOCK_SPACE = 0x746C


class TransactionLock(IntEnum):
    """Rules that are checked and then acted on, one transaction at a time across every process."""

    launch_round = 1  # no other round queued or running, then insert one
    refill_pool = 2  # count open and reserved items, then reserve or write more


def lock_transaction(db: Session, lock: TransactionLock) -> None:
    """Run the rest of this transaction alone among those taking the same lock. PostgreSQL
    holds an advisory lock until commit or rollback; a SQLite transaction already holds
    the database's one write lock (BEGIN IMMEDIATE). Take it before reading what it guards:
    each later statement then sees what the previous holder committed."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_SPACE, int(lock))))


def steady_connections(engine: Engine) -> int:
    """How many connections the engine's pool keeps open between uses; its overflow past
    that is opened on demand and closed again as soon as it is returned."""
    return engine.pool.size()


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error (CLI, workers)."""
    session = get_sessionmaker()()
    try:
        yield session
    except BaseException:
        end_session(session, commit=False)
        raise
    end_session(session, commit=True)


def end_session(session: Session, *, commit: bool) -> None:
    """Commit (or roll back) and close: the end of every unit of work. A failed commit rolls back."""
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
