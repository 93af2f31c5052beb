"""Small builders for test data, going through the same services the app uses."""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.feedback.items import create_item
from app.feedback.leasing import lease_next_item
from app.feedback.ratings import RatingInput, submit_rating
from app.models import Item, ItemPurpose, Lease, Prompt, Sample, User
from app.users.service import create_user


def make_user(db: Session, name: str, *, admin: bool = False, password: str | None = None) -> User:
    return create_user(db, name, admin=admin, password=password)


def make_items(db: Session, count: int, *, overlap: int = 1, responses: int = 2,
               prompt_text: str = "Prompt {i}", checkpoint_id: int | None = None) -> list[int]:
    ids = []
    for i in range(count):
        prompt = Prompt(text=prompt_text.format(i=i), source="test", tags=[])
        db.add(prompt)
        db.flush()
        samples = [Sample(prompt_id=prompt.id, checkpoint_id=checkpoint_id,
                          text=f"Response {chr(65 + j)} to {i}", generation={}) for j in range(responses)]
        db.add_all(samples)
        db.flush()
        item = create_item(db, prompt_id=prompt.id, sample_ids=[s.id for s in samples],
                           purpose=ItemPurpose.train, overlap=overlap)
        db.flush()
        ids.append(item.id)
    db.commit()
    return ids


def expire_leases(db: Session, item_id: int | None = None, ago: timedelta = timedelta(days=1)) -> None:
    """Let time pass: live leases (of one item, or all) ran out `ago` (their raters still
    hold them), and so did the items' full_until marks, which track the earliest expiry."""
    leases, items = select(Lease), select(Item).where(Item.full_until.is_not(None))
    if item_id is not None:
        leases, items = leases.where(Lease.item_id == item_id), items.where(Item.id == item_id)
    for lease in db.scalars(leases):
        lease.expires_at -= ago
    for item in db.scalars(items):
        item.full_until -= ago
    db.commit()


def rate_items(db: Session, preferred: int, ties: int = 0, checkpoint_id: int | None = None,
               rater: str = "rater-bulk") -> None:
    """A rater answers `preferred` new items with a preference (the first response) and
    `ties` more with a tie, through the services the API calls."""
    user = db.scalar(select(User).where(User.name == rater)) or make_user(db, rater)
    ids = make_items(db, preferred + ties, checkpoint_id=checkpoint_id)
    for n, item_id in enumerate(ids):
        leased = lease_next_item(db, user.id)
        assert leased is not None and leased.item_id == item_id
        first = db.get(Item, item_id).responses[0].sample_id
        submit_rating(db, user.id, RatingInput(item_id=item_id, verdict="preferred", preferred_response_id=first)
                      if n < preferred else RatingInput(item_id=item_id, verdict="tie"))
    db.commit()
