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
samples to score or rate with a thumb.

Several generation workers share the pool (worker.pool_reservation): a refill reserves what it
will sample before sampling, outside any transaction, and writes its items in one transaction
that also ends the reservation. A worker killed at any point leaves no item half-written, and
its reservation ends with its database connection (PostgreSQL) or when it expires.
"""

import random
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.checkpoints.service import current_checkpoint, under_review
from app.db import TransactionLock, get_engine, get_sessionmaker, lock_transaction, session_scope
from app.feedback.items import create_item
from app.models import Checkpoint, ItemPurpose, Prompt, Sample, Selection
from app.prompts.sources import SourceSettings, source_settings
from app.settings import get_settings
from worker.checkpoint_models import model_ref
from worker.engines import generation_engine
from worker.pool_reservation import drop_reservations, release, reserve, room_per_source
from worker.selection import choose_pairs
from worker.training.sequences import Prompt as ModelPrompt
from worker.training.sequences import prompt_of


@dataclass
class NewItem:
    prompt_id: int
    source: str
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
    reservations: list[int]  # worker.pool_reservation's, until the items are written


# A planned item with its responses (as Sample fields) and how they were chosen (Item.selection).
Sampled = tuple[NewItem, list[dict], dict | None]


def plan_refill(db: Session, rng: random.Random) -> Plan | None:
    """Choose the new items and reserve them; the caller commits, then samples."""
    settings = get_settings()
    lock_transaction(db, TransactionLock.refill_pool)
    checkpoint = current_checkpoint(db)
    if checkpoint is None:
        return None
    rival = under_review(db)
    share = settings.review_share
    if rival is None:
        rival = db.get(Checkpoint, checkpoint.parent_id) if checkpoint.parent_id else None
        share = settings.progress_share
    sources = sorted(db.scalars(select(Prompt.source).where(Prompt.active.is_(True)).distinct()))
    room = room_per_source(db, sources)
    selection = source_settings(db)
    items = []
    for source in sources:
        need = room[source]
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
                items.append(NewItem(prompt_id, source, texts[prompt_id], ItemPurpose.progress))
            elif config.responses == 1:
                items.append(NewItem(prompt_id, source, texts[prompt_id], ItemPurpose.train, 1))
            elif config.selection != Selection.random and rng.random() >= config.random_share:
                items.append(NewItem(prompt_id, source, texts[prompt_id], ItemPurpose.train, config.candidates,
                                     config.selection))
            else:
                items.append(NewItem(prompt_id, source, texts[prompt_id], ItemPurpose.train))
    if not items:
        return None
    per_source = {source: sum(1 for i in items if i.source == source) for source in sources}
    return Plan(checkpoint, rival, items, reserve(db, per_source))


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
    # One connection from plan to write: on PostgreSQL it holds the reservations' locks meanwhile.
    with get_engine().connect() as connection:
        with get_sessionmaker()(bind=connection) as db:
            plan = plan_refill(db, rng)
            db.commit()
        if plan is None:
            return 0
        try:
            items = sample_items(plan, rng)
            with get_sessionmaker()(bind=connection) as db:
                added = write_items(db, plan, items)
                db.commit()
            return added
        finally:
            release(connection, plan.reservations)


def sample_items(plan: Plan, rng: random.Random) -> list[Sampled]:
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
    items = [(i, [current[k], current[n + k]], {"method": "random"}) for k, i in enumerate(train)]
    items += [(i, [current[2 * n + k], rival[k]], None) for k, i in enumerate(progress)]
    items += [(i, [current[2 * n + m + k]], {"method": "single"}) for k, i in enumerate(single)]
    groups, start = [], 2 * n + m + len(single)
    for item in chosen:
        groups.append(current[start : start + item.candidates])
        start += item.candidates
    if chosen:
        picks = choose_pairs(plan.checkpoint, [(i.prompt, [s["token_ids"] for s in group], i.selection)
                                               for i, group in zip(chosen, groups)], seed + 2)
        items += [(i, [group[a], group[b]], record) for i, group, (a, b, record) in zip(chosen, groups, picks)]
    return items


def write_items(db: Session, plan: Plan, items: list[Sampled]) -> int:
    """Write the items and end the plan's reservations, in the caller's transaction; an item
    whose source has no room left is dropped. Returns how many were written."""
    lock_transaction(db, TransactionLock.refill_pool)
    drop_reservations(db, plan.reservations)
    room = room_per_source(db, sorted({item.source for item, _, _ in items}))
    written = 0
    # The checkpoint may have changed while sampling; items stay honest either
    # way because every sample names the checkpoint that produced it.
    for item, responses, selection in items:
        if room[item.source] <= 0:
            continue
        room[item.source] -= 1
        samples = [Sample(prompt_id=item.prompt_id, **response) for response in responses]
        db.add_all(samples)
        db.flush()
        create_item(db, prompt_id=item.prompt_id, sample_ids=[s.id for s in samples],
                    purpose=item.purpose, overlap=get_settings().pool_overlap).selection = selection
        written += 1
    return written
