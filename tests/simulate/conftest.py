"""Items whose two responses a rule tells apart, and API tokens for raters."""

import pytest
from sqlalchemy.orm import Session

from app.feedback.items import create_item
from app.models import ItemPurpose, Prompt, Sample
from app.users.service import create_token
from tests.factories import make_user

TOPICS = ("cat", "garden", "river", "piano")


def make_rule_items(db: Session, overlaps: list[int]) -> dict[int, int]:
    """One compare item per overlap: a cheerful and a gloomy answer (which comes first alternates).
    Returns {item id: id of the sample the 'positive' rule prefers}."""
    winners = {}
    for i, overlap in enumerate(overlaps):
        topic = TOPICS[i % len(TOPICS)]
        prompt = Prompt(text=f"Tell me about the {topic}.", source="test", tags=[topic])
        db.add(prompt)
        db.flush()
        good = Sample(prompt_id=prompt.id, text=f"The {topic} is lovely and warm.", generation={})
        bad = Sample(prompt_id=prompt.id, text=f"The {topic} is awful.", generation={})
        db.add_all([good, bad])
        db.flush()
        order = [good.id, bad.id] if i % 2 else [bad.id, good.id]
        item = create_item(db, prompt_id=prompt.id, sample_ids=order, purpose=ItemPurpose.train, overlap=overlap)
        db.flush()
        winners[item.id] = good.id
    db.commit()
    return winners


@pytest.fixture
def rater_tokens(db):
    def make(*names: str) -> list[str]:
        tokens = [create_token(db, make_user(db, name)) for name in names]
        db.commit()
        return tokens
    return make
