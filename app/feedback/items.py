"""Creating rateable items from samples: comparisons of two or more, or one to score."""

from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.models import Item, ItemKind, ItemPurpose, ItemResponse

MAX_OVERLAP = 100
# sample.source is a VARCHAR(128).
MAX_SOURCE_CHARS = 128


def check_overlap(overlap: int) -> None:
    if not 1 <= overlap <= MAX_OVERLAP:
        raise InvalidInput(f"overlap must be 1..{MAX_OVERLAP}", field="overlap")


def create_item(db: Session, *, prompt_id: int, sample_ids: list[int], purpose: ItemPurpose,
                overlap: int = 1) -> Item:
    check_overlap(overlap)
    if not sample_ids or len(set(sample_ids)) != len(sample_ids):
        raise InvalidInput("an item needs one response, or two or more distinct ones", field="responses")
    kind = ItemKind.score if len(sample_ids) == 1 else ItemKind.compare
    item = Item(kind=kind, purpose=purpose, prompt_id=prompt_id, overlap=overlap,
                responses=[ItemResponse(position=i, sample_id=s) for i, s in enumerate(sample_ids)])
    db.add(item)
    return item
