"""What the sample pool holds right now: open items by purpose and by prompt source."""

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Item, ItemPurpose, Lease, Prompt, Rating, utcnow
from app.settings import get_settings


@dataclass(frozen=True)
class SourceRow:
    source: str
    open_items: int
    active_prompts: int


@dataclass(frozen=True)
class PoolStatus:
    open_by_purpose: dict[str, int]
    by_source: list[SourceRow]
    open_items: int
    answered_items: int  # every answer they need is in
    closed_items: int  # closed unanswered: sampled by a checkpoint that stopped being current
    leased_now: int
    active_prompts: int
    ratings: int
    # The generation worker refills each source up to this many open items.
    target_per_source: int = field(default_factory=lambda: get_settings().pool_target)


def pool_status(db: Session) -> PoolStatus:
    open_by_purpose = {purpose.value: 0 for purpose in ItemPurpose}
    open_by_purpose |= dict(db.execute(
        select(Item.purpose, func.count()).where(Item.done.is_(False)).group_by(Item.purpose)
    ).tuples().all())
    open_by_source = dict(db.execute(
        select(Prompt.source, func.count(Item.id)).join(Item, Item.prompt_id == Prompt.id)
        .where(Item.done.is_(False)).group_by(Prompt.source)
    ).tuples().all())
    prompts_by_source = dict(db.execute(
        select(Prompt.source, func.count()).where(Prompt.active.is_(True)).group_by(Prompt.source)
    ).tuples().all())
    sources = sorted(set(open_by_source) | set(prompts_by_source))
    return PoolStatus(
        open_by_purpose={str(k): v for k, v in open_by_purpose.items()},
        by_source=[SourceRow(s, open_by_source.get(s, 0), prompts_by_source.get(s, 0)) for s in sources],
        open_items=sum(open_by_source.values()),
        answered_items=db.scalar(select(func.count()).select_from(Item).where(
            Item.done.is_(True), Item.answers > 0)) or 0,
        closed_items=db.scalar(select(func.count()).select_from(Item).where(
            Item.done.is_(True), Item.answers == 0)) or 0,
        leased_now=db.scalar(select(func.count()).select_from(Lease).where(
            Lease.expires_at > utcnow(), Lease.skipped_at.is_(None))) or 0,
        active_prompts=sum(prompts_by_source.values()),
        ratings=db.scalar(select(func.count()).select_from(Rating)) or 0,
    )
