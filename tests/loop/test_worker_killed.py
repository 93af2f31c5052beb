"""A training worker SIGKILLed mid-round: the round fails, nothing partial is visible."""

import os
import random
import signal

import pytest
from sqlalchemy import func, select

from app.models import Checkpoint, RoundMetric, TrainingRound
from tests.loop.conftest import api
from tests.loop.test_end_to_end import open_items_from, rate_through_api
from tests.services import wait_until

pytestmark = pytest.mark.slow


def test_killed_training_worker_leaves_the_current_checkpoint(db, loop_state, live_server, start_worker):
    generator = start_worker("generate", beat=True, pool_target=64)
    wait_until(lambda: open_items_from(db, loop_state["base_id"]) >= 64, 120, "the pool to fill")
    rate_through_api(api(live_server, loop_state["tokens"]["ann"]), 64, random.Random(1))
    # "immediate": no gate stops the round before PPO starts, whatever its tiny reward model learned.
    trainer = start_worker("train", beat=False, promotion="immediate")
    admin = api(live_server, loop_state["tokens"]["admin"])
    round_id = admin.post("/rounds", json={"algorithm": "ppo", "policy_steps": 500}).json()["id"]

    # Kill it once PPO is under way (metrics of the policy phase are arriving).
    def ppo_started():
        db.expire_all()
        return db.scalar(select(func.count()).select_from(RoundMetric)
                         .where(RoundMetric.round_id == round_id, RoundMetric.phase == "ppo"))
    wait_until(ppo_started, 180, "PPO steps")
    os.killpg(trainer.pid, signal.SIGKILL)
    trainer.wait()

    # The stale heartbeat (15 s in tests) fails the round: the beat does it, on the generate queue.
    def failed():
        body = admin.get(f"/rounds/{round_id}").json()
        return body if body["status"] == "failed" else None

    body = wait_until(failed, 90, "the round to be failed", interval=1)
    assert "worker lost" in body["error"] and body["produced_checkpoint_id"] is None

    db.expire_all()
    checkpoints = db.scalars(select(Checkpoint)).all()
    assert [(c.id, c.status) for c in checkpoints] == [(loop_state["base_id"], "current")]
    store = loop_state["store"]
    assert not (store / f"round-{round_id}").exists()
    # Raters were never blocked: the generation worker kept its pool.
    assert generator.poll() is None
    assert db.get(TrainingRound, round_id).status == "failed"

    # A restarted training worker picks up the redelivered task, sees the round
    # failed, and does not run it again.
    start_worker("train", beat=False, promotion="immediate")
    launched = admin.post("/rounds", json={"algorithm": "dpo", "policy_steps": 4})
    assert launched.status_code == 201
    again = launched.json()["id"]
    done = wait_until(lambda: admin.get(f"/rounds/{again}").json()["status"] not in ("queued", "running") and
                      admin.get(f"/rounds/{again}").json(), 300, "the next round", interval=1)
    assert done["status"] == "succeeded", done
    assert db.get(TrainingRound, round_id).status == "failed"
