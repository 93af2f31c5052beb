"""Prompt sources: how the pool draws training items for each: pairs (random, or by uncertainty),
or single responses to score or thumb."""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.models import Prompt, PromptSource, Selection

MAX_CANDIDATES = 16
MAX_SOURCE_CHARS = 128  # prompt.source is a VARCHAR(128)


@dataclass(frozen=True)
class SourceSettings:
    selection: Selection = Selection.random
    random_share: float = 0.25
    candidates: int = 4
    responses: int = 2  # per training item: 2 to compare, 1 to score or thumb


@dataclass(frozen=True)
class SourceView:
    name: str
    prompts: int
    active_prompts: int
    settings: SourceSettings


def source_settings(db: Session) -> dict[str, SourceSettings]:
    """Each configured source's settings; a source not listed draws at random."""
    return {row.name: SourceSettings(row.selection, row.random_share, row.candidates, row.responses)
            for row in db.scalars(select(PromptSource))}


def configure_source(db: Session, name: str, settings: SourceSettings) -> SourceSettings:
    """Set how the pool draws pairs for `name` (which may have no prompts yet)."""
    if not name or len(name) > MAX_SOURCE_CHARS:
        raise InvalidInput(f"a source's name is 1..{MAX_SOURCE_CHARS} characters", field="name")
    if not 0.0 <= settings.random_share <= 1.0:
        raise InvalidInput("random_share must be between 0 and 1", field="random_share")
    if not 2 <= settings.candidates <= MAX_CANDIDATES:
        raise InvalidInput(f"candidates must be 2..{MAX_CANDIDATES}", field="candidates")
    if settings.responses not in (1, 2):
        raise InvalidInput("responses must be 1 (score or thumb) or 2 (compare)", field="responses")
    row = db.get(PromptSource, name) or PromptSource(name=name)
    row.selection, row.random_share = Selection(settings.selection), settings.random_share
    row.candidates, row.responses = settings.candidates, settings.responses
    db.add(row)
    db.flush()
    return settings


def list_sources(db: Session) -> list[SourceView]:
    """Every source that has prompts or settings, by name."""
    counts = {source: (total, active) for source, total, active in db.execute(
        select(Prompt.source, func.count(), func.count().filter(Prompt.active.is_(True))).group_by(Prompt.source))}
    settings = source_settings(db)
    return [SourceView(name, *counts.get(name, (0, 0)), settings.get(name, SourceSettings()))
            for name in sorted(counts.keys() | settings.keys())]
