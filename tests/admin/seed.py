"""A dashboard with something to show: lineage, rounds, metrics, pool, raters.

Used by the browser test (and its screenshots); everything goes through the
services or straight into the tables the worker writes.
"""

import math
import random
from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.checkpoints.service import add_checkpoint, make_current
from app.feedback.items import create_item
from app.models import (
    CheckpointStatus,
    Item,
    ItemPurpose,
    Prompt,
    Rating,
    RoundMetric,
    RoundRating,
    RoundStatus,
    Sample,
    TrainingRound,
    User,
    Verdict,
    utcnow,
)
from tests.admin.conftest import answer
from tests.factories import make_user

LOG = ("12:00:01 ppo on checkpoint 2: 46 pairs (3 ties), 0 scores, 24 prompts\n"
       "12:00:19 reward model: loss=0.412 accuracy=0.83 eval_accuracy=0.79\n"
       "12:00:20 ppo: step 18 of 40, reward_mean=0.61 kl=0.042\n")


def _item(db: Session, source: str, text: str, checkpoints: list[int | None],
          purpose: ItemPurpose, overlap: int = 1) -> tuple[int, list[int]]:
    prompt = Prompt(text=text, source=source)
    db.add(prompt)
    db.flush()
    samples = [Sample(prompt_id=prompt.id, checkpoint_id=c, text=f"{text} / {i}") for i, c in enumerate(checkpoints)]
    db.add_all(samples)
    db.flush()
    item = create_item(db, prompt_id=prompt.id, sample_ids=[s.id for s in samples], purpose=purpose,
                       overlap=overlap)
    db.commit()
    return item.id, [s.id for s in samples]


def _metrics(round_id: int) -> list[dict]:
    rng = random.Random(0)
    rows = []
    for step in range(1, 25):
        rows += [("reward_model", step, "loss", 0.69 * math.exp(-step / 10) + 0.3 + rng.uniform(-0.03, 0.03)),
                 ("reward_model", step, "accuracy", min(0.95, 0.5 + 0.35 * (1 - math.exp(-step / 6)) + rng.uniform(-0.04, 0.04)))]
        if step % 6 == 0:
            rows += [("reward_model", step, "eval_loss", 0.69 * math.exp(-step / 12) + 0.38),
                     ("reward_model", step, "eval_accuracy", 0.5 + 0.3 * (1 - math.exp(-step / 8)))]
    for step in range(1, 19):
        rows += [("ppo", step, "reward_mean", 0.6 * (1 - math.exp(-step / 7)) + rng.uniform(-0.05, 0.05)),
                 ("ppo", step, "kl", 0.25 * step + rng.uniform(0, 0.4)),
                 ("ppo", step, "kl_k3", 0.22 * step + rng.uniform(0, 0.3)),
                 ("ppo", step, "loss", 0.4 * math.exp(-step / 9) + rng.uniform(-0.02, 0.02)),
                 ("ppo", step, "value_loss", 0.3 * math.exp(-step / 6) + 0.05),
                 ("ppo", step, "entropy", 2.1 - 0.02 * step),
                 ("ppo", step, "response_length", 38 + step * 0.4)]
        if step % 3 == 0:  # the watch's checks on held-out prompts
            rows += [("ppo", step, "heldout_kl", 0.23 * step), ("ppo", step, "heldout_degenerate", 0.0),
                     ("ppo", step, "heldout_distinct_2", 0.44 - 0.002 * step),
                     ("ppo", step, "heldout_unfinished", 0.01)]
    return [{"round_id": round_id, "phase": p, "step": s, "name": n, "value": v} for p, s, n, v in rows]


PASSED_GATES = [
    {"name": "kept_step", "value": 40.0, "limit": "> 0", "passed": True, "detail": "training ran to its end"},
    {"name": "kl", "value": 4.2, "limit": "<= 15 nats", "passed": True,
     "detail": "KL to the parent per response on held-out prompts"},
    {"name": "degenerate_share", "value": 0.0, "limit": "<= 0.05 (parent 0 + 0.05)", "passed": True,
     "detail": "samples on held-out prompts"},
    {"name": "distinct_2_ratio", "value": 0.93, "limit": ">= 0.6 of the parent's (0.441)", "passed": True,
     "detail": "samples on held-out prompts"},
]
SAMPLES = [
    {"prompt": "Tell me about the garden.", "parent": "The garden was noisy. We went to the garden and it was dull.",
     "candidate": "The garden looks lovely today. Everyone agrees the garden feels calm."},
    {"prompt": "Describe the river.", "parent": "The river is cold.",
     "candidate": "The river is bright and <b>pleasant</b> this morning."},
]


def watch_report(kl: float, samples: list[dict]) -> dict:
    stats = {"samples": 128, "degenerate": 0.0, "repetition": 0.05, "distinct_2": 0.41, "mean_words": 12.0,
             "unfinished": 0.0}
    return {"checks": 8, "kept_step": 40, "stopped": "", "kl": kl, "kl_budget": 15.0, "stats": stats,
            "parent_stats": stats | {"distinct_2": 0.44, "mean_words": 11.2}, "heldout": {}, "samples": samples}


def seed_dashboard(db: Session) -> int:
    """Returns the id of the running round (its metrics half written).

    v1 base -> v2 (round 1, current: the raters preferred it); round 2 rejected before any
    policy step (its reward model at chance); round 3's v3 rejected by its KL gate; round 4's
    worker lost; round 5 running on v2.
    """
    now = utcnow()
    base = add_checkpoint(db, path="base", name="tiny-gpt2-base", parent_id=None, metrics={"model_type": "gpt2"})
    tuned = add_checkpoint(db, path="round-1", name="round-1", parent_id=base.id,
                           metrics={"dpo/heldout_accuracy": 0.62, "dpo/heldout_kl": 4.2,
                                    "dpo/reward_accuracy": 0.7, "dpo/loss": 0.58},
                           status=CheckpointStatus.candidate)
    make_current(db, tuned, reason="raters preferred it: won 31 of 44 decisive blind comparisons against v1 "
                                   "(70%, 95% interval 56%-82%; 9 ties)")
    rejected = add_checkpoint(db, path="round-3", name="round-3", parent_id=tuned.id,
                              metrics={"dpo/heldout_kl": 23.5}, status=CheckpointStatus.rejected,
                              status_reason="rejected by the gates of round 3: kl 23.5 (limit <= 15 nats)")
    db.add_all([
        TrainingRound(algorithm="dpo", status=RoundStatus.succeeded, config={"algorithm": "dpo", "policy_steps": 40},
                      base_checkpoint_id=base.id, produced_checkpoint_id=tuned.id, progress=1.0,
                      created_at=now - timedelta(hours=3), started_at=now - timedelta(hours=3),
                      finished_at=now - timedelta(hours=2, minutes=50), gates=PASSED_GATES,
                      report={"comparisons": {"decisive": 212, "ties": 61}, "held_out_prompts": 64,
                              "policy": {"steps_planned": 40, "steps_run": 40, "kept_step": 40, "checks": 8,
                                         "stopped": ""}, "watch": watch_report(4.2, SAMPLES)}),
        TrainingRound(algorithm="ppo", status=RoundStatus.rejected, config={"algorithm": "ppo", "policy_steps": 40},
                      base_checkpoint_id=tuned.id, progress=1.0, created_at=now - timedelta(hours=2),
                      started_at=now - timedelta(hours=2), finished_at=now - timedelta(hours=1, minutes=58),
                      error="rejected by its gates: reward_model_accuracy 0.517 (limit lower 95% bound > 0.5); "
                            "the current checkpoint is unchanged",
                      gates=[{"name": "reward_model_accuracy", "value": 0.517, "limit": "lower 95% bound > 0.5",
                              "passed": False, "detail": "31 of 60 held-out comparisons right, 95% interval "
                                                         "[0.39, 0.64]"}],
                      report={"policy": {"steps_planned": 40, "steps_run": 0,
                                         "stopped": "the reward model is not above chance: no policy step was taken"}}),
        TrainingRound(algorithm="dpo", status=RoundStatus.rejected, config={"algorithm": "dpo", "policy_steps": 80},
                      base_checkpoint_id=tuned.id, produced_checkpoint_id=rejected.id, progress=1.0,
                      created_at=now - timedelta(hours=1, minutes=30), started_at=now - timedelta(hours=1, minutes=30),
                      finished_at=now - timedelta(hours=1, minutes=25),
                      error="rejected by its gates: kl 23.5 (limit <= 15 nats); the current checkpoint is unchanged",
                      gates=[{"name": "kl", "value": 23.5, "limit": "<= 15 nats", "passed": False,
                              "detail": "KL to the parent per response on held-out prompts"}]),
        TrainingRound(algorithm="ppo", status=RoundStatus.failed, config={"algorithm": "ppo", "policy_steps": 40},
                      base_checkpoint_id=tuned.id, progress=0.41, created_at=now - timedelta(hours=1),
                      started_at=now - timedelta(hours=1), finished_at=now - timedelta(minutes=52),
                      error="worker lost: no heartbeat for 15s; the current checkpoint is unchanged"),
    ])
    running = TrainingRound(algorithm="ppo", status=RoundStatus.running, base_checkpoint_id=tuned.id,
                            config={"algorithm": "ppo", "policy_steps": 40, "learning_rate": 0.0001,
                                    "kl_coef": 0.05, "kl_budget": 15.0, "reward_model_epochs": 2, "ratings": "all",
                                    "seed": 0},
                            progress=0.62, log=LOG, created_at=now - timedelta(minutes=5),
                            started_at=now - timedelta(minutes=4))
    db.add(running)
    db.flush()
    db.execute(insert(RoundMetric), _metrics(running.id))
    db.commit()

    raters = [make_user(db, name).id for name in ("ann", "bob", "chen", "dara")]
    # Blind progress comparisons, tuned vs base: tuned wins 4 of 6, one tie.
    for i, (user, verdict) in enumerate(zip(raters + raters[:2], ["a", "a", "tie", "b", "a", "a"])):
        item_id, (new, old) = _item(db, "helpfulness", f"Progress prompt {i}", [tuned.id, base.id], ItemPurpose.progress)
        answer(db, user, item_id, "tie" if verdict == "tie" else "preferred",
               preferred={"a": new, "b": old}.get(verdict), time_spent_ms=4000 + 900 * i)
    # Overlapping train items: ann, bob and chen answer each (mostly agreeing).
    for i in range(4):
        item_id, (a, b) = _item(db, "coding", f"Shared prompt {i}", [tuned.id, tuned.id], ItemPurpose.train, overlap=3)
        for user, pick in zip(raters[:3], [a, a, b if i == 1 else a]):
            answer(db, user, item_id, "preferred", preferred=pick, time_spent_ms=6000 + 1500 * user)
    for i in range(9):  # the open pool
        _item(db, ["helpfulness", "coding", "safety"][i % 3], f"Open prompt {i}", [tuned.id, tuned.id], ItemPurpose.train)
    _item(db, "api", "A client's prompt", [None, None], ItemPurpose.client)
    # The running round snapshotted every rating so far.
    db.execute(insert(RoundRating), [{"round_id": running.id, "rating_id": r} for r in db.scalars(select(Rating.id))])
    db.commit()
    return running.id


def finish_as_candidate(db: Session, round_id: int, wins: int = 9, losses: int = 3, ties: int = 2) -> int:
    """The running round ends: its result passed the gates and is a candidate that raters have
    started to compare blind with the current checkpoint. Returns the candidate's id."""
    round_ = db.get(TrainingRound, round_id)
    current = round_.base_checkpoint_id
    candidate = add_checkpoint(db, path=f"round-{round_id}", name=f"round-{round_id}", parent_id=current,
                               status=CheckpointStatus.candidate, metrics={"ppo/heldout_kl": 3.1},
                               status_reason=f"passed the gates of round {round_id}; raters compare it blind "
                                             "with the current checkpoint")
    round_.status, round_.progress, round_.finished_at = RoundStatus.succeeded, 1.0, utcnow()
    round_.produced_checkpoint_id, round_.gates = candidate.id, PASSED_GATES
    round_.report = {"comparisons": {"decisive": 240, "ties": 70}, "held_out_prompts": 64,
                     "reward_model": {"steps": 24, "epochs": 2, "train_comparisons": 248, "held_out_comparisons": 62},
                     "policy": {"steps_planned": 40, "steps_run": 40, "kept_step": 40, "checks": 14, "stopped": ""},
                     "watch": watch_report(3.1, SAMPLES)}
    db.commit()
    raters = list(db.scalars(select(User.id).where(User.name.in_(["ann", "bob", "chen", "dara"]))))
    # Answered blind comparisons, written as the rating service stores them (the raters' queues
    # hold older open items, so leasing would hand them those first).
    for i, verdict in enumerate(["a"] * wins + ["b"] * losses + ["tie"] * ties):
        item_id, (new, old) = _item(db, "helpfulness", f"Review prompt {i}", [candidate.id, current],
                                    ItemPurpose.progress)
        shown = [{"sample_id": new, "checkpoint_id": candidate.id}, {"sample_id": old, "checkpoint_id": current}]
        db.add(Rating(item_id=item_id, user_id=raters[i % len(raters)], provenance=shown,
                      verdict=Verdict.tie if verdict == "tie" else Verdict.preferred,
                      preferred_sample_id={"a": new, "b": old}.get(verdict)))
        item = db.get(Item, item_id)
        item.answers, item.done = 1, True
    db.commit()
    return candidate.id
