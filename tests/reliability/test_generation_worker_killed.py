"""A generation worker SIGKILLed in the middle of writing a batch of new items.

The kill is made to land inside the batch's transaction: the test holds a SHARE
lock on the item table, so the worker writes the first samples of the batch and
then waits to insert the first item; it is killed right there. Nothing of the
batch may become visible (no item without all its responses, no orphan sample),
and a new worker fills the pool completely. The training worker's case is
tests/loop/test_worker_killed.py.
"""

import os
import signal

import pytest
from sqlalchemy import create_engine, func, select, text

from app.models import Item, ItemResponse, Sample
from tests.loop.conftest import loop_state, start_worker, tiny_base_dir  # noqa: F401  (fixtures)
from tests.reliability.harness import wait_for

pytestmark = pytest.mark.slow

POOL_TARGET = 16  # what tests/loop's start_worker sets


def counts(db) -> dict[str, int]:
    db.expire_all()
    return {"items": db.scalar(select(func.count()).select_from(Item)),
            "samples": db.scalar(select(func.count()).select_from(Sample))}


def incomplete_items(db) -> list[tuple[int, int]]:
    """(item id, number of responses) of items that lack one of their two responses."""
    per_item = (select(Item.id, func.count(Sample.id))
                .outerjoin(ItemResponse, ItemResponse.item_id == Item.id)
                .outerjoin(Sample, Sample.id == ItemResponse.sample_id)
                .group_by(Item.id))
    return [(item_id, n) for item_id, n in db.execute(per_item) if n != 2]


def orphan_samples(db) -> int:
    return db.scalar(select(func.count()).select_from(Sample).where(
        ~select(ItemResponse.item_id).where(ItemResponse.sample_id == Sample.id).exists()))


def test_killed_generation_worker_leaves_no_partial_batch(db, app_env, loop_state,  # noqa: F811
                                                          start_worker):  # noqa: F811
    assert counts(db) == {"items": 0, "samples": 0}
    engine = create_engine(app_env)
    blocker = engine.connect()
    try:
        blocker.execute(text("LOCK TABLE item IN SHARE MODE"))  # held until the rollback below
        worker = start_worker("generate", beat=True)

        def writer_waiting_on_items():
            with engine.connect() as probe:
                return probe.execute(text(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query ILIKE 'INSERT INTO item %'")).scalar()

        wait_for(writer_waiting_on_items, 120, "the worker's batch to wait on the item table",
                 interval=0.05)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        with engine.connect() as probe:  # the batch's first samples exist, uncommitted
            assert probe.execute(text("SELECT count(*) FROM sample")).scalar() == 0
    finally:
        blocker.rollback()
        blocker.close()

    # Its backend notices the dead client and rolls the batch back.
    wait_for(lambda: not writer_waiting_on_items(), 30, "the killed worker's transaction to end")
    assert counts(db) == {"items": 0, "samples": 0}

    start_worker("generate", beat=True)
    wait_for(lambda: counts(db)["items"] >= POOL_TARGET, 120, "a new worker to fill the pool",
             interval=0.5)
    assert incomplete_items(db) == []
    assert orphan_samples(db) == 0
    engine.dispose()
