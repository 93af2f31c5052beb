"""Gold items: comparisons whose right answer an admin knows, mixed in blind to measure raters.

A gold item looks like any other to raters. Marking one opens it to every
rater (its overlap becomes the most there is; each rater answers an item at
most once), and reliability (app.feedback.reliability) reads each rater's
answer to it against the known answer, so one rater's answer to a gold item
tells as much as several raters agreeing.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.feedback.items import MAX_OVERLAP
from app.models import Item, ItemKind, Verdict

Answer = tuple[str, int | None]  # (verdict, preferred sample id)


def mark_gold(db: Session, item_id: int, verdict: Verdict, preferred_sample_id: int | None) -> Item:
    item = db.get(Item, item_id)
    if item is None:
        raise NotFound(f"no item {item_id}")
    if item.kind != ItemKind.compare:
        raise InvalidInput("gold answers are for comparisons; this item scores one response", field="item_id")
    shown = {r.sample_id for r in item.responses}
    if verdict == Verdict.preferred and preferred_sample_id not in shown:
        raise InvalidInput("preferred_response_id must be one of the item's responses",
                           field="preferred_response_id")
    if verdict != Verdict.preferred and preferred_sample_id is not None:
        raise InvalidInput(f"a {verdict} answer names no response", field="preferred_response_id")
    item.gold = {"verdict": str(verdict), "preferred_sample_id": preferred_sample_id}
    item.overlap = MAX_OVERLAP
    item.done = item.answers >= item.overlap
    db.flush()
    return item


def gold_answers(db: Session) -> dict[int, Answer]:
    """item id -> its gold answer, for every gold item."""
    return {item_id: (gold["verdict"], gold["preferred_sample_id"])
            for item_id, gold in db.execute(select(Item.id, Item.gold).where(Item.gold.is_not(None)))}
