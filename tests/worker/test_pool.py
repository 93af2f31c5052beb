"""Many generation workers, one pool: reservations keep each prompt source at its target.

On both backends, a live reservation holds its items back from other refills, and one that
ended (released, or expired) does not; a worker whose reservation ended while it sampled
writes only what is still missing. On PostgreSQL, refills racing in separate processes fill
each source exactly once, and a real worker SIGKILLed while sampling leaves nothing written
and a reservation that no longer counts. The kill while writing is
tests/reliability/test_generation_worker_killed.py.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text, update

from app.checkpoints.service import register_checkpoint
from app.db import TransactionLock, get_engine, get_sessionmaker, lock_transaction
from app.models import Checkpoint, Item, ItemResponse, PoolReservation, Prompt, Sample, utcnow
from app.prompts.service import NewPrompt, add_prompts
from app.settings import get_settings
from tests.loop.conftest import loop_state, start_worker, tiny_base_dir  # noqa: F401  (fixtures)
from tests.services import lock_waiters, wait_until
from worker.pool import plan_refill, refill_pool, sample_items, write_items
from worker.pool_reservation import LIVE_LOCK_SPACE, LIVE_RESERVATION_IDS, release, reserve

ROOT = Path(__file__).resolve().parents[2]
TARGET = 4
SOURCES = ("faq", "stories")


@pytest.fixture
def pool_target(monkeypatch):
    """The pool target for this test only (settings are cached per process)."""

    def set_target(target: int) -> None:
        monkeypatch.setenv("TUNELOOP_POOL_TARGET", str(target))
        get_settings.cache_clear()

    yield set_target
    monkeypatch.delenv("TUNELOOP_POOL_TARGET")
    get_settings.cache_clear()


@pytest.fixture
def two_sources(any_db, tiny_base_dir, pool_target):  # noqa: F811
    """The tiny base model current, two prompt sources of 8 prompts each, a target of 4."""
    store = get_settings().checkpoint_dir
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(tiny_base_dir, store / "base")
    register_checkpoint(any_db, store / "base", name="base")
    add_prompts(any_db, [NewPrompt(text=f"Tell me about {n} ({source})", source=source)
                         for source in SOURCES for n in range(8)])
    any_db.commit()
    pool_target(TARGET)
    return any_db


def open_items(db) -> dict[str, int]:
    counts = dict(db.execute(select(Prompt.source, func.count(Item.id)).join(Item, Item.prompt_id == Prompt.id)
                             .where(Item.done.is_(False)).group_by(Prompt.source)).tuples().all())
    db.commit()  # on SQLite an open transaction, even a reading one, holds the write lock
    return counts


def reserved_items(db) -> int:
    count = db.scalar(select(func.coalesce(func.sum(PoolReservation.items), 0)))
    db.commit()
    return count


def orphan_samples(db) -> int:
    return db.scalar(select(func.count()).select_from(Sample).where(
        ~select(ItemResponse.item_id).where(ItemResponse.sample_id == Sample.id).exists()))


def expire_reservations(db) -> None:
    """Let time pass: every reservation outlived `pool_reservation_seconds`."""
    db.execute(update(PoolReservation).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()


def test_a_reservation_holds_its_items_back_until_released_or_expired(two_sources):
    db = two_sources
    # Another worker's connection, holding a reservation of 3 "faq" items while it samples.
    with get_engine().connect() as other_worker:
        with get_sessionmaker()(bind=other_worker) as session:
            lock_transaction(session, TransactionLock.refill_pool)
            reservations = reserve(session, {"faq": 3})
            session.commit()
        assert refill_pool(seed=1) == TARGET - 3 + TARGET
        assert open_items(db) == {"faq": TARGET - 3, "stories": TARGET}
        release(other_worker, reservations)
    assert refill_pool(seed=2) == 3
    assert open_items(db) == {"faq": TARGET, "stories": TARGET}
    assert refill_pool(seed=3) == 0

    # Two "faq" items answered: a reservation of them, live, then expired though its
    # connection still holds it (a worker on a machine that vanished).
    db.execute(update(Item).where(Item.id.in_(db.scalars(select(Item.id).join(Prompt).where(
        Prompt.source == "faq").limit(2)).all())).values(done=True))
    db.commit()
    with get_engine().connect() as other_worker:
        with get_sessionmaker()(bind=other_worker) as session:
            lock_transaction(session, TransactionLock.refill_pool)
            reservations = reserve(session, {"faq": 2})
            session.commit()
        assert refill_pool(seed=4) == 0
        expire_reservations(db)
        assert refill_pool(seed=5) == 2
        assert reserved_items(db) == 0
        release(other_worker, reservations)
    assert open_items(db) == {"faq": TARGET, "stories": TARGET}


def test_a_worker_whose_reservation_ended_writes_only_what_is_missing(two_sources):
    db = two_sources
    rng = random.Random(7)
    with get_engine().connect() as slow_worker:
        with get_sessionmaker()(bind=slow_worker) as session:
            plan = plan_refill(session, rng)
            session.commit()
        assert len(plan.items) == 2 * TARGET
        # It samples for longer than its reservation lasts; another worker fills the pool meanwhile.
        expire_reservations(db)
        assert refill_pool(seed=8) == 2 * TARGET
        items = sample_items(plan, rng)
        with get_sessionmaker()(bind=slow_worker) as session:
            assert write_items(session, plan, items) == 0
            session.commit()
        release(slow_worker, plan.reservations)
    assert open_items(db) == {"faq": TARGET, "stories": TARGET}
    assert orphan_samples(db) == 0


RACER = """
import sys
from worker.pool import refill_pool
print("ready", flush=True)
sys.stdin.readline()
print(refill_pool(), flush=True)
"""


@pytest.mark.slow
def test_refills_racing_in_separate_processes_fill_each_source_once(db, loop_state, pool_target):  # noqa: F811
    """Three worker processes plan their refill at the same moment, on one database."""
    add_prompts(db, [NewPrompt(text=f"Question {n}?", source="faq") for n in range(12)])
    db.commit()
    target = 12
    pool_target(target)
    racers = [subprocess.Popen([sys.executable, "-c", RACER], env=dict(os.environ), cwd=ROOT, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(3)]
    try:
        for racer in racers:
            assert racer.stdout.readline().strip() == "ready"
        for racer in racers:  # all loaded and waiting: go
            racer.stdin.write("go\n")
            racer.stdin.flush()
        added = sorted(int(racer.stdout.readline()) for racer in racers)
    finally:
        for racer in racers:
            racer.kill()
            racer.wait()
    # One planner took both sources' whole deficit; the others found it reserved.
    assert added == [0, 0, 2 * target]
    assert open_items(db) == {"builtin": target, "faq": target}
    assert orphan_samples(db) == 0


@pytest.mark.slow
def test_a_worker_killed_while_sampling_leaves_nothing_and_holds_nothing(db, app_env, loop_state,  # noqa: F811
                                                                      start_worker, pool_target):  # noqa: F811
    """The kill lands while the worker samples: its checkpoint has no stored content hash, so
    sampling first records it (worker.checkpoint_models), and the test holds that row's lock."""
    pool_target(16)  # start_worker's
    db.execute(update(Checkpoint).values(content_hash=""))
    db.commit()
    engine = create_engine(app_env)
    blocker = engine.connect()
    try:
        blocker.execute(text("SELECT id FROM checkpoint FOR UPDATE"))
        worker = start_worker("generate", beat=False)  # refills as soon as it is ready
        wait_until(lambda: lock_waiters(engine, "UPDATE checkpoint%"), 120, "the worker to be sampling",
                   interval=0.05)
        assert reserved_items(db) == 16  # the whole deficit, taken
        assert refill_pool(seed=1) == 0  # a second worker meanwhile finds nothing to do
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        blocker.rollback()
        blocker.close()

    def live_reservations() -> list[int]:
        with engine.connect() as probe:
            return probe.scalars(LIVE_RESERVATION_IDS, {"space": LIVE_LOCK_SPACE}).all()

    # Its connections close with it, and its reservation stops counting at once, not after
    # pool_reservation_seconds; nothing it sampled was written.
    wait_until(lambda: not live_reservations(), 30, "the killed worker's connection to end", interval=0.1)
    assert db.scalar(select(func.count()).select_from(Sample)) == 0
    assert refill_pool(seed=2) == 16
    assert reserved_items(db) == 0
    assert open_items(db) == {"builtin": 16}
    assert orphan_samples(db) == 0
    engine.dispose()
