"""Rounds on two processes (TUNELOOP_TRAIN_PROCESSES=2: torchrun over gloo) through a real
Celery worker: a rank killed mid-training fails its round and changes nothing; the next round
publishes; with TUNELOOP_TRAIN_SHARDING=fsdp DPO and PPO rounds (a reward model, then PPO)
train sharded and publish."""

import os
import signal

import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.models import Checkpoint, RoundMetric, TrainingRound
from app.rounds.lifecycle import launch_round
from app.rounds.schemas import RoundSettings
from tests.admin.conftest import train_queue  # noqa: F401  (a fixture)
from tests.factories import rate_items
from tests.services import wait_until
from tests.training.conftest import job_processes
from worker.training.checkpoint_io import verify_checkpoint

pytestmark = pytest.mark.slow


def launch(settings: dict) -> int:
    with session_scope() as db:
        return launch_round(db, RoundSettings(**settings), None).id


def finished(db, round_id: int) -> TrainingRound | None:
    db.expire_all()
    round_ = db.get(TrainingRound, round_id)
    return round_ if round_.status not in ("queued", "running") else None


@pytest.mark.usefixtures("train_queue")
def test_a_dead_rank_fails_its_round_cleanly_and_the_next_round_publishes(db, loop_state, start_worker):
    rate_items(db, preferred=64, checkpoint_id=loop_state["base_id"])
    store = loop_state["store"]
    # "immediate": the result becomes current whatever its gates say of a model this small.
    start_worker("train", beat=False, train_processes=2, promotion="immediate")

    # DPO on 52 training pairs: 16 steps, the watch checking every one, rank 1 killed after the first.
    doomed = launch({"algorithm": "dpo", "policy_steps": 80})
    job = store / "rounds" / str(doomed) / "dpo-job"
    wait_until(lambda: db.scalar(select(func.count()).select_from(RoundMetric).where(
        RoundMetric.round_id == doomed, RoundMetric.phase == "dpo")), 120, "the first DPO step")
    os.kill(job_processes(job)[1], signal.SIGKILL)

    failed = wait_until(lambda: finished(db, doomed), 60, "the round to end", interval=0.5)
    assert failed.status == "failed" and failed.produced_checkpoint_id is None
    assert "dpo on 2 processes failed: rank 1" in failed.error and "SIGKILL" in failed.error, failed.error
    assert [(c.id, c.status) for c in db.scalars(select(Checkpoint))] == [(loop_state["base_id"], "current")]
    assert not (store / f"round-{doomed}").exists() and not list(store.glob(f".round-{doomed}*"))
    assert job_processes(job) == {}  # torchrun stopped rank 0 and itself

    published = launch({"algorithm": "dpo", "policy_steps": 4})
    done = wait_until(lambda: finished(db, published), 120, "the next round", interval=0.5)
    assert done.status == "succeeded", (done.error, done.log)
    assert done.report["processes"] == 2 and done.report["policy"]["steps_run"] == 4
    checkpoint = db.get(Checkpoint, done.produced_checkpoint_id)
    assert checkpoint.status == "current" and checkpoint.parent_id == loop_state["base_id"]
    verify_checkpoint(store / checkpoint.path)
    steps = db.scalars(select(RoundMetric.step).where(RoundMetric.round_id == published, RoundMetric.name == "loss")
                       .order_by(RoundMetric.step)).all()
    assert steps == [1, 2, 3, 4]  # rank 0's metrics, relayed by the worker


@pytest.mark.usefixtures("train_queue")
@pytest.mark.parametrize("algorithm", ["dpo", "ppo"])
def test_a_sharded_round_publishes(db, loop_state, start_worker, algorithm):
    rate_items(db, preferred=64, checkpoint_id=loop_state["base_id"])
    start_worker("train", beat=False, train_processes=2, train_sharding="fsdp", promotion="immediate")

    round_id = launch({"algorithm": algorithm, "policy_steps": 3})
    done = wait_until(lambda: finished(db, round_id), 180, "the round", interval=0.5)
    assert done.status == "succeeded", (done.error, done.log)
    assert done.report["sharded"] and done.report["policy"]["steps_run"] == 3
    assert "training on 2 processes (torchrun, FSDP;" in done.log
    checkpoint = db.get(Checkpoint, done.produced_checkpoint_id)
    assert checkpoint.status == "current" and checkpoint.parent_id == loop_state["base_id"]
    verify_checkpoint(loop_state["store"] / checkpoint.path)
