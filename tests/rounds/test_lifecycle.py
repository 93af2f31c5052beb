"""Races on a round's life against real PostgreSQL: however many processes try at once, one
round is queued or running, and one worker runs it.

Each race is made to happen: the test holds a lock that every racer needs, waits until all of
them are queued behind it, and lets go; they then run together.
"""

import threading
from collections.abc import Callable

from sqlalchemy import create_engine, select, text

from app.checkpoints.service import add_checkpoint
from app.db import session_scope
from app.errors import Conflict
from app.models import CheckpointStatus, RoundStatus, TrainingRound
from app.rounds.lifecycle import claim_round, launch_round
from app.rounds.schemas import RoundSettings
from app.settings import get_settings
from tests.admin.conftest import train_queue  # noqa: F401  (a fixture)
from tests.factories import rate_items
from tests.services import lock_waiters, wait_until

RACERS = 8


def race(app_env: str, hold: str, waiting_on: str, attempt: Callable[[int], object]) -> list:
    """Run `attempt(n)` in RACERS threads, each in its own session and connection, released
    together once all wait behind the lock the statement `hold` takes. Returns their results."""
    engine = create_engine(app_env)
    results: list = [None] * RACERS

    def run(n: int) -> None:
        try:
            results[n] = attempt(n)
        except Conflict as error:
            results[n] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(RACERS)]
    blocker = engine.connect()
    try:
        blocker.execute(text(hold))
        for thread in threads:
            thread.start()
        wait_until(lambda: lock_waiters(engine, waiting_on) == RACERS, 30, f"{RACERS} racers behind the lock",
                   interval=0.05)
    finally:
        blocker.rollback()
        blocker.close()
    for thread in threads:
        thread.join(30)
    engine.dispose()
    return results


def test_one_of_many_workers_claims_a_round(db, app_env):
    round_ = TrainingRound(algorithm="dpo", config={}, status=RoundStatus.queued)
    db.add(round_)
    db.commit()

    def claim(n: int) -> bool:
        with session_scope() as session:
            return claim_round(session, round_.id, f"worker-{n}")

    # The round's row lock: every claim's UPDATE waits on it, then re-checks the row it finds.
    results = race(app_env, f"SELECT id FROM training_round WHERE id = {round_.id} FOR UPDATE",
                   "UPDATE training_round%", claim)
    assert sorted(results) == [False] * (RACERS - 1) + [True]
    db.expire_all()
    claimed = db.get(TrainingRound, round_.id)
    assert claimed.status == RoundStatus.running and claimed.worker == f"worker-{results.index(True)}"


def test_racing_launches_queue_one_round(db, app_env, train_queue):  # noqa: F811
    current = add_checkpoint(db, path="base", name="base", parent_id=None, status=CheckpointStatus.current)
    rate_items(db, get_settings().min_round_comparisons, checkpoint_id=current.id)

    def launch(n: int) -> int:
        with session_scope() as session:
            return launch_round(session, RoundSettings(algorithm="dpo"), None).id

    # A lock on the table every launch updates (stale rounds) before it looks for an active
    # round: without launches taking turns, all of them would find none and queue one each.
    results = race(app_env, "LOCK TABLE training_round IN EXCLUSIVE MODE", "%", launch)
    launched = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(launched) == 1 and len(refused) == RACERS - 1, results
    assert all("already queued or running" in str(error) for error in refused)
    assert db.scalars(select(TrainingRound.id)).all() == launched
    assert train_queue.llen("train") == 1
