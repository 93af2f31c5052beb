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
    ItemPurpose,
    Prompt,
    Rating,
    RoundMetric,
    RoundRating,
    RoundStatus,
    Sample,
    TrainingRound,
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
                 ("ppo", step, "kl", 0.0025 * step + rng.uniform(0, 0.004)),
                 ("ppo", step, "kl_k3", 0.0022 * step + rng.uniform(0, 0.003)),
                 ("ppo", step, "loss", 0.4 * math.exp(-step / 9) + rng.uniform(-0.02, 0.02)),
                 ("ppo", step, "value_loss", 0.3 * math.exp(-step / 6) + 0.05),
                 ("ppo", step, "entropy", 2.1 - 0.02 * step),
                 ("ppo", step, "response_length", 38 + step * 0.4)]
    return [{"round_id": round_id, "phase": p, "step": s, "name": n, "value": v} for p, s, n, v in rows]


def seed_dashboard(db: Session) -> int:
    """Returns the id of the running round (its metrics half written)."""
    now = utcnow()
    base = add_checkpoint(db, path="base", name="tiny-gpt2-base", parent_id=None, metrics={"model_type": "gpt2"})
    tuned = add_checkpoint(db, path="round-1", name="round-1", parent_id=base.id,
                           metrics={"reward_model/eval_accuracy": 0.74, "reward_model/accuracy": 0.81,
                                    "dpo/reward_accuracy": 0.7, "dpo/loss": 0.58})
    make_current(db, tuned)
    db.add_all([
        TrainingRound(algorithm="dpo", status=RoundStatus.succeeded, config={"algorithm": "dpo", "policy_steps": 40},
                      base_checkpoint_id=base.id, produced_checkpoint_id=tuned.id, progress=1.0,
                      created_at=now - timedelta(hours=3), started_at=now - timedelta(hours=3),
                      finished_at=now - timedelta(hours=2, minutes=50)),
        TrainingRound(algorithm="ppo", status=RoundStatus.failed, config={"algorithm": "ppo", "policy_steps": 40},
                      base_checkpoint_id=tuned.id, progress=0.41, created_at=now - timedelta(hours=1),
                      started_at=now - timedelta(hours=1), finished_at=now - timedelta(minutes=52),
                      error="worker lost: no heartbeat for 15s; the current checkpoint is unchanged"),
    ])
    running = TrainingRound(algorithm="ppo", status=RoundStatus.running, base_checkpoint_id=tuned.id,
                            config={"algorithm": "ppo", "policy_steps": 40, "learning_rate": 0.0001,
                                    "kl_coef": 0.05, "reward_model_epochs": 2, "ratings": "all", "seed": 0},
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
