"""Keep the pool of rateable items topped up from the current checkpoint.

Per prompt source, open items are refilled to `pool_target`. Most new items
compare two samples of the current policy (training data); a share compares
the current checkpoint with a rival, blind: the candidate under review when
there is one (`review_share` of the new items: the raters' verdict decides
whether it goes live, app.checkpoints.review), else the current checkpoint's
parent (`progress_share`: the human win rate of every round). A training item
of a source set to active selection (app.prompts.sources), outside its random
share, offers the pair of K samples an ensemble of reward heads disputes most
(worker.selection); a source set to one response per item offers single
samples to score or rate with a thumb. Sampling happens outside any transaction; items are
written in one.
"""

import random
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.checkpoints.service import current_checkpoint, under_review
from app.db import session_scope
from app.feedback.items import create_item
from app.models import Checkpoint, Item, ItemPurpose, Prompt, Sample, Selection
from app.prompts.sources import SourceSettings, source_settings
from app.settings import get_settings
from worker.checkpoint_models import model_ref
from worker.engines import generation_engine
from worker.selection import choose_pairs
from worker.training.sequences import Prompt as ModelPrompt
from worker.training.sequences import prompt_of


@dataclass
class NewItem:
    prompt_id: int
    prompt: ModelPrompt  # as the model reads it
    purpose: ItemPurpose
    # Samples drawn for a training item: 1 (one response to score or thumb), 2 (a pair), or more
    # to choose a pair from under active selection.
    candidates: int = 2
    selection: Selection = Selection.random


@dataclass
class Plan:
    checkpoint: Checkpoint
    rival: Checkpoint | None  # compared with the current checkpoint: a candidate, or the parent
    items: list[NewItem]


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
    selection = source_settings(db)
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
        config = selection.get(source, SourceSettings())
        for prompt_id in chosen:
            if rival is not None and rng.random() < share:
                items.append(NewItem(prompt_id, texts[prompt_id], ItemPurpose.progress))
            elif config.responses == 1:
                items.append(NewItem(prompt_id, texts[prompt_id], ItemPurpose.train, 1))
            elif config.selection != Selection.random and rng.random() >= config.random_share:
                items.append(NewItem(prompt_id, texts[prompt_id], ItemPurpose.train, config.candidates,
                                     config.selection))
            else:
                items.append(NewItem(prompt_id, texts[prompt_id], ItemPurpose.train))
    return Plan(checkpoint, rival, items) if items else None


def sample(checkpoint: Checkpoint, prompts: list[ModelPrompt], seed: int) -> list[dict]:
    settings = get_settings()
    with session_scope() as db:
        path, base = model_ref(db, checkpoint)
    generation = {"temperature": settings.generation_temperature,
                  "max_new_tokens": settings.generation_max_new_tokens, "seed": seed}
    results, fingerprint = generation_engine().generate(path, base, prompts, **generation)
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
    train = [i for i in plan.items if i.purpose == ItemPurpose.train and i.candidates == 2]
    chosen = [i for i in plan.items if i.purpose == ItemPurpose.train and i.candidates > 2]
    single = [i for i in plan.items if i.purpose == ItemPurpose.train and i.candidates == 1]
    progress = [i for i in plan.items if i.purpose == ItemPurpose.progress]
    # Two samples of the current policy per random training item, one per progress item and per
    # single-response item, K per selected one, sampled in one batch.
    current = sample(plan.checkpoint, [i.prompt for i in train] * 2 + [i.prompt for i in progress + single]
                     + [i.prompt for i in chosen for _ in range(i.candidates)], seed)
    rival = sample(plan.rival, [i.prompt for i in progress], seed + 1) if progress else []
    n, m = len(train), len(progress)
    items = [(i.prompt_id, ItemPurpose.train, [current[k], current[n + k]], {"method": "random"})
             for k, i in enumerate(train)]
    items += [(i.prompt_id, ItemPurpose.progress, [current[2 * n + k], rival[k]], None)
              for k, i in enumerate(progress)]
    items += [(i.prompt_id, ItemPurpose.train, [current[2 * n + m + k]], {"method": "single"})
              for k, i in enumerate(single)]
    groups, start = [], 2 * n + m + len(single)
    for item in chosen:
        groups.append(current[start : start + item.candidates])
        start += item.candidates
    if chosen:
        picks = choose_pairs(plan.checkpoint, [(i.prompt, [s["token_ids"] for s in group], i.selection)
                                               for i, group in zip(chosen, groups)], seed + 2)
        items += [(i.prompt_id, ItemPurpose.train, [group[a], group[b]], record)
                  for i, group, (a, b, record) in zip(chosen, groups, picks)]
    with session_scope() as db:
        # The checkpoint may have changed while sampling; items stay honest either
        # way because every sample names the checkpoint that produced it.
        for prompt_id, purpose, responses, selection in items:
            samples = [Sample(prompt_id=prompt_id, **response) for response in responses]
            db.add_all(samples)
            db.flush()
            create_item(db, prompt_id=prompt_id, sample_ids=[s.id for s in samples],
                        purpose=purpose, overlap=get_settings().pool_overlap).selection = selection
    return len(items)
