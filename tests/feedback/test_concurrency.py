"""Many raters leasing at once on PostgreSQL never overfill an item."""

import threading
from collections import Counter

from sqlalchemy import select

from app.db import get_sessionmaker
from app.feedback.leasing import lease_next_item
from app.feedback.ratings import RatingInput, submit_rating
from app.models import Item, Rating
from tests.factories import make_items, make_user


def test_20_raters_50_items_overlap_2(db):
    raters = [make_user(db, f"rater{i}").id for i in range(20)]
    make_items(db, 50, overlap=2)
    errors: list[BaseException] = []
    start = threading.Barrier(len(raters))

    def rate_until_empty(user_id: int) -> None:
        session = get_sessionmaker()()
        try:
            start.wait()
            while True:
                leased = lease_next_item(session, user_id)
                session.commit()
                if leased is None:
                    return
                first = leased.responses[0].sample_id
                submit_rating(session, user_id, RatingInput(
                    item_id=leased.item_id, verdict="preferred", preferred_response_id=first))
                session.commit()
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            session.close()

    threads = [threading.Thread(target=rate_until_empty, args=(r,)) for r in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    ratings = db.execute(select(Rating.item_id, Rating.user_id)).all()
    per_item = Counter(item_id for item_id, _ in ratings)
    assert len(per_item) == 50 and set(per_item.values()) == {2}
    assert len(set(ratings)) == len(ratings) == 100
    assert all(item.done and item.answers == 2 for item in db.scalars(select(Item)))
