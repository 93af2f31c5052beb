"""Keep the pool of rateable items topped up from the current checkpoint.

Per prompt source, open items are refilled to `pool_target`. Most new items
compare two samples of the current policy (reward-model data); a share
compares the current checkpoint with its parent, blind, for the human win
rate. Sampling happens outside any transaction; items are written in one.
"""

import random
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.checkpoints.service import current_checkpoint, resolve_path
from app.db import session_scope
from app.feedback.items import create_item
from app.models import Checkpoint, Item, ItemPurpose, Prompt, Sample
from app.settings import get_settings
from worker.models_cache import load_policy
from worker.training.generation import generate_responses


@dataclass
class Plan:
    checkpoint: Checkpoint
    parent: Checkpoint | None
    # (prompt id, prompt text, purpose) for each new item
    items: list[tuple[int, str, ItemPurpose]]


def plan_refill(db: Session) -> Plan | None:
    settings = get_settings()
    checkpoint = current_checkpoint(db)
    if checkpoint is None:
        return None
    parent = db.get(Checkpoint, checkpoint.parent_id) if checkpoint.parent_id else None
    open_by_source = dict(
        db.execute(select(Prompt.source, func.count(Item.id)).join(Item, Item.prompt_id == Prompt.id)
                   .where(Item.done.is_(False)).group_by(Prompt.source)).tuples().all()
    )
    sources = db.scalars(select(Prompt.source).where(Prompt.active.is_(True)).distinct()).all()
    rng = random.Random(secrets.randbits(32))
    items = []
    for source in sources:
        need = settings.pool_target - open_by_source.get(source, 0)
        if need <= 0:
            continue
        prompts = db.execute(
            select(Prompt.id, Prompt.text).where(Prompt.active.is_(True), Prompt.source == source)
            .order_by(func.random()).limit(need)
        ).all()
        for prompt_id, text in prompts:
            progress = parent is not None and rng.random() < settings.progress_share
            items.append((prompt_id, text, ItemPurpose.progress if progress else ItemPurpose.train))
    return Plan(checkpoint, parent, items) if items else None


def sample(checkpoint: Checkpoint, prompts: list[str], seed: int) -> list[dict]:
    settings = get_settings()
    model, tokenizer = load_policy(resolve_path(checkpoint))
    generation = {"temperature": settings.generation_temperature,
                  "max_new_tokens": settings.generation_max_new_tokens, "seed": seed}
    results = generate_responses(model, tokenizer, prompts, seed=seed,
                                 temperature=generation["temperature"],
                                 max_new_tokens=generation["max_new_tokens"])
    # A byte-level tokenizer can emit a NUL byte, which PostgreSQL text refuses.
    return [{"checkpoint_id": checkpoint.id, "text": r.text.replace("\x00", "") or "(empty response)",
             "generation": generation | {"ended_with_eos": r.ended_with_eos}} for r in results]


def refill_pool() -> int:
    """Top the pool up; returns how many items were added."""
    with session_scope() as db:
        plan = plan_refill(db)
    if plan is None:
        return 0
    seed = secrets.randbits(31)
    train = [(pid, text) for pid, text, purpose in plan.items if purpose == ItemPurpose.train]
    progress = [(pid, text) for pid, text, purpose in plan.items if purpose == ItemPurpose.progress]
    # Two samples of the current policy per training item, sampled in one batch.
    current = sample(plan.checkpoint, [t for _, t in train] * 2 + [t for _, t in progress], seed)
    previous = sample(plan.parent, [t for _, t in progress], seed + 1) if progress else []
    n = len(train)
    pairs = [(pid, ItemPurpose.train, current[i], current[n + i]) for i, (pid, _) in enumerate(train)]
    pairs += [(pid, ItemPurpose.progress, current[2 * n + i], previous[i])
              for i, (pid, _) in enumerate(progress)]
    with session_scope() as db:
        # The checkpoint may have changed while sampling; items stay honest either
        # way because every sample names the checkpoint that produced it.
        for prompt_id, purpose, first, second in pairs:
            samples = [Sample(prompt_id=prompt_id, **first), Sample(prompt_id=prompt_id, **second)]
            db.add_all(samples)
            db.flush()
            create_item(db, prompt_id=prompt_id, sample_ids=[s.id for s in samples],
                        purpose=purpose, overlap=get_settings().pool_overlap)
    return len(pairs)
