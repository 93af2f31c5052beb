"""Keep the pool of rateable items topped up from the current checkpoint.

Per prompt source, open items are refilled to `pool_target`. Most new items
compare two samples of the current policy (training data); a share compares
the current checkpoint with a rival, blind: the candidate under review when
there is one (`review_share` of the new items: the raters' verdict decides
whether it goes live, app.checkpoints.review), else the current checkpoint's
parent (`progress_share`: the human win rate of every round). Sampling happens
outside any transaction; items are written in one.
"""

import random
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.checkpoints.service import current_checkpoint, under_review
from app.db import session_scope
from app.feedback.items import create_item
from app.models import Checkpoint, Item, ItemPurpose, Prompt, Sample
from app.settings import get_settings
from worker.checkpoint_models import model_ref
from worker.models_cache import loaded_policy
from worker.training.generation import generate_responses
from worker.training.sequences import Prompt as ModelPrompt
from worker.training.sequences import prompt_of, tokenizer_fingerprint


@dataclass
class Plan:
    checkpoint: Checkpoint
    rival: Checkpoint | None  # compared with the current checkpoint: a candidate, or the parent
    # (prompt id, the prompt as the model reads it, purpose) for each new item
    items: list[tuple[int, ModelPrompt, ItemPurpose]]


def plan_refill(db: Session, rng: random.Random) -> Plan | None:
    settings = get_settings()
    checkpoint = current_checkpoint(db)
    if checkpoint is None:
        return None
    rival = under_review(db)
    share = settings.review_share
    if rival is None:
        rival = db.get(Checkpoint, checkpoint.parent_id) if checkpoint.parent_id else None
        share = settings.progress_share
    open_by_source = dict(
        db.execute(select(Prompt.source, func.count(Item.id)).join(Item, Item.prompt_id == Prompt.id)
                   .where(Item.done.is_(False)).group_by(Prompt.source)).tuples().all()
    )
    sources = db.scalars(select(Prompt.source).where(Prompt.active.is_(True)).distinct()).all()
    items = []
    for source in sorted(sources):
        need = settings.pool_target - open_by_source.get(source, 0)
        if need <= 0:
            continue
        ids = list(db.scalars(select(Prompt.id).where(Prompt.active.is_(True), Prompt.source == source)
                              .order_by(Prompt.id)))
        chosen = rng.sample(ids, min(need, len(ids)))
        texts = {prompt_id: prompt_of(text, messages) for prompt_id, text, messages in
                 db.execute(select(Prompt.id, Prompt.text, Prompt.messages).where(Prompt.id.in_(chosen)))}
        for prompt_id in chosen:
            text = texts[prompt_id]
            progress = rival is not None and rng.random() < share
            items.append((prompt_id, text, ItemPurpose.progress if progress else ItemPurpose.train))
    return Plan(checkpoint, rival, items) if items else None


def sample(checkpoint: Checkpoint, prompts: list[ModelPrompt], seed: int) -> list[dict]:
    settings = get_settings()
    with session_scope() as db:
        path, base = model_ref(db, checkpoint)
    generation = {"temperature": settings.generation_temperature,
                  "max_new_tokens": settings.generation_max_new_tokens, "seed": seed}
    with loaded_policy(path, base) as (model, tokenizer):
        fingerprint = tokenizer_fingerprint(tokenizer)
        results = generate_responses(model, tokenizer, prompts, seed=seed,
                                     temperature=generation["temperature"],
                                     max_new_tokens=generation["max_new_tokens"])
    # A byte-level tokenizer can emit a NUL byte, which PostgreSQL text refuses.
    return [{"checkpoint_id": checkpoint.id, "text": r.text.replace("\x00", "") or "(empty response)",
             "generation": generation | {"ended_with_eos": r.ended_with_eos},
             "token_ids": r.token_ids, "tokenizer": fingerprint} for r in results]


def refill_pool(seed: int | None = None) -> int:
    """Top the pool up; returns how many items were added. A seed makes the choice of
    prompts, of purposes and the samples repeatable (benchmarks); by default it is fresh."""
    rng = random.Random(secrets.randbits(32) if seed is None else seed)
    with session_scope() as db:
        plan = plan_refill(db, rng)
    if plan is None:
        return 0
    seed = rng.getrandbits(31)
    train = [(pid, text) for pid, text, purpose in plan.items if purpose == ItemPurpose.train]
    progress = [(pid, text) for pid, text, purpose in plan.items if purpose == ItemPurpose.progress]
    # Two samples of the current policy per training item, sampled in one batch.
    current = sample(plan.checkpoint, [t for _, t in train] * 2 + [t for _, t in progress], seed)
    rival = sample(plan.rival, [t for _, t in progress], seed + 1) if progress else []
    n = len(train)
    pairs = [(pid, ItemPurpose.train, current[i], current[n + i]) for i, (pid, _) in enumerate(train)]
    pairs += [(pid, ItemPurpose.progress, current[2 * n + i], rival[i])
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
