"""Rounds that would make the live model worse change nothing; raters' blind verdicts decide the rest.

In-process on PostgreSQL with the tiny base model: real generation fills the pool,
ratings go through the services the API calls, rounds run through the worker's
execute_round (the Celery task's body), the review through the beat's call.
"""

import random

import pytest
from sqlalchemy import func, select

from app.checkpoints.review import review_candidates
from app.checkpoints.service import add_checkpoint, current_checkpoint
from app.db import session_scope
from app.feedback.leasing import lease_next_item
from app.feedback.ratings import RatingInput, submit_rating
from app.feedback.views import leased_item_view
from app.models import (
    Checkpoint,
    CheckpointStatus,
    Item,
    ItemPurpose,
    ItemResponse,
    RoundMetric,
    Sample,
    TrainingRound,
)
from app.rounds.lifecycle import launch_round
from app.rounds.schemas import RoundSettings
from simulation.raters import answer_item
from simulation.rules import RULES
from tests.admin.conftest import train_queue  # noqa: F401  (a fixture)
from tests.factories import make_user
from worker.pool import refill_pool
from worker.rounds import execute_round

pytestmark = pytest.mark.slow


def rate(user_id: int, count: int, choose) -> int:
    """Answer `count` items: `choose(item view)` returns the API body."""
    done = 0
    while done < count:
        with session_scope() as db:
            leased = lease_next_item(db, user_id)
            if leased is None:
                if not refill_pool(seed=done):
                    break
                continue
            body = choose(leased_item_view(leased).model_dump(mode="json"))
            submit_rating(db, user_id, RatingInput(**body))
        done += 1
    return done


def randomly(rng: random.Random):
    def choose(item: dict) -> dict:
        return {"item_id": item["item_id"], "verdict": "preferred",
                "preferred_response_id": rng.choice(item["responses"])["id"]}
    return choose


def run(settings: dict, db) -> TrainingRound:
    with session_scope() as session:
        round_id = launch_round(session, RoundSettings(**settings), None).id
    execute_round(round_id)
    db.expire_all()
    return db.get(TrainingRound, round_id)


@pytest.fixture
def rater(db, loop_state, monkeypatch) -> int:
    monkeypatch.setenv("TUNELOOP_POOL_TARGET", "64")
    from tests.conftest import reset_app_caches

    reset_app_caches()
    user = make_user(db, "carol")
    db.commit()
    return user.id


def test_a_reward_model_trained_on_random_labels_makes_no_new_current_checkpoint(db, loop_state, rater,
                                                                                 train_queue):
    assert rate(rater, 96, randomly(random.Random(0))) == 96
    round_ = run({"algorithm": "ppo", "policy_steps": 4, "seed": 0}, db)

    assert round_.status == "rejected", (round_.error, round_.log)
    [gate] = round_.gates
    assert gate["name"] == "reward_model_accuracy" and not gate["passed"]
    assert "not above chance" in round_.report["policy"]["stopped"] and round_.report["policy"]["steps_run"] == 0
    assert round_.produced_checkpoint_id is None
    assert current_checkpoint(db).id == loop_state["base_id"]
    assert db.scalars(select(Checkpoint.id)).all() == [loop_state["base_id"]]
    # No policy step was taken.
    assert not db.scalar(select(func.count()).select_from(RoundMetric).where(
        RoundMetric.round_id == round_.id, RoundMetric.phase == "ppo"))


def test_a_round_that_breaks_its_policy_is_stopped_and_rejected(db, loop_state, rater, train_queue):
    rule, rng = RULES["positive"], random.Random(1)
    assert rate(rater, 96, lambda item: answer_item(rule, item, 0.0, rng)) == 96
    # A learning rate 500 times the default: the first check already finds the policy broken.
    round_ = run({"algorithm": "dpo", "policy_steps": 40, "learning_rate": 0.05, "seed": 0}, db)

    assert round_.status == "rejected", (round_.error, round_.log)
    failed = {g["name"] for g in round_.gates if not g["passed"]}
    assert "kept_step" in failed
    stopped = round_.report["policy"]["stopped"]
    assert "beyond the limit at step" in stopped and stopped.endswith("kept step 0")
    assert round_.report["policy"]["steps_run"] < 40
    assert "rejected by its gates" in round_.error and round_.produced_checkpoint_id is None
    assert current_checkpoint(db).id == loop_state["base_id"]


def test_a_candidate_the_raters_prefer_becomes_current_and_one_they_do_not_is_rejected(db, loop_state, rater,
                                                                                       monkeypatch):
    monkeypatch.setenv("TUNELOOP_REVIEW_SHARE", "1.0")
    from tests.conftest import reset_app_caches

    reset_app_caches()
    base = db.get(Checkpoint, loop_state["base_id"])
    candidate = add_checkpoint(db, path=base.path, name="candidate", parent_id=base.id,
                               status=CheckpointStatus.candidate)
    db.commit()

    def prefer_candidate(item: dict) -> dict:
        with session_scope() as session:
            ours = [r["id"] for r in item["responses"]
                    if session.get(Sample, r["id"]).checkpoint_id == candidate.id]
        return {"item_id": item["item_id"], "verdict": "preferred", "preferred_response_id": ours[0]}

    # Every new item compares the candidate with the current checkpoint.
    assert refill_pool(seed=1) > 0
    assert db.scalar(select(func.count()).select_from(Item).where(
        Item.done.is_(False), Item.purpose != ItemPurpose.progress)) == 0
    assert rate(rater, 19, prefer_candidate) == 19
    with session_scope() as session:
        assert review_candidates(session).decision is None  # 19 decisive comparisons: not yet
    assert rate(rater, 1, prefer_candidate) == 1
    with session_scope() as session:
        review = review_candidates(session)
    assert review.decision == "promote" and review.low > 0.5
    db.expire_all()
    assert db.get(Checkpoint, candidate.id).status == "current"
    assert "raters preferred it: won 20 of 20 decisive" in db.get(Checkpoint, candidate.id).status_reason
    assert db.get(Checkpoint, base.id).status == "ready"

    # A second candidate that the raters find worse is rejected, and its waiting items close.
    worse = add_checkpoint(db, path=base.path, name="worse", parent_id=candidate.id,
                           status=CheckpointStatus.candidate)
    db.commit()

    def prefer_current(item: dict) -> dict:
        with session_scope() as session:
            theirs = [r["id"] for r in item["responses"] if session.get(Sample, r["id"]).checkpoint_id != worse.id]
        return {"item_id": item["item_id"], "verdict": "preferred", "preferred_response_id": theirs[0]}

    # The items already open compare the new current checkpoint with its parent; then the worse one's.
    with session_scope() as session:
        session.execute(Item.__table__.update().where(Item.done.is_(False)).values(done=True))
    refill_pool(seed=2)
    assert rate(rater, 20, prefer_current) == 20
    with session_scope() as session:
        assert review_candidates(session).decision == "reject"
    db.expire_all()
    assert db.get(Checkpoint, worse.id).status == "rejected"
    assert "raters preferred the current checkpoint" in db.get(Checkpoint, worse.id).status_reason
    assert current_checkpoint(db).id == candidate.id
    waiting = (select(func.count(func.distinct(Item.id))).join(ItemResponse, ItemResponse.item_id == Item.id)
               .join(Sample, Sample.id == ItemResponse.sample_id)
               .where(Item.done.is_(False), Sample.checkpoint_id == worse.id))
    assert db.scalar(waiting) == 0


def test_a_round_too_big_for_its_memory_fails_at_once_with_the_numbers(db, loop_state, rater, monkeypatch,
                                                                        train_queue):
    rule, rng = RULES["positive"], random.Random(2)
    assert rate(rater, 96, lambda item: answer_item(rule, item, 0.0, rng)) == 96
    monkeypatch.setenv("TUNELOOP_TRAIN_MEMORY_GIB", "0.0001")  # about 100 kB for the round
    from tests.conftest import reset_app_caches

    reset_app_caches()
    round_ = run({"algorithm": "dpo", "policy_steps": 8}, db)
    assert round_.status == "failed"
    assert "needs about" in round_.error and "GiB on cpu" in round_.error and "use LoRA" in round_.error
    assert "Traceback" not in round_.log
    assert not db.scalar(select(func.count()).select_from(RoundMetric).where(RoundMetric.round_id == round_.id))
