"""Many raters leasing and answering at once on PostgreSQL: no item overfilled, no
answer lost or doubled, no lock cycle."""

import threading
from collections import Counter

from sqlalchemy import event, func, select

from app.db import get_engine, get_sessionmaker
from app.feedback.leasing import lease_items, lease_next_item
from app.feedback.ratings import RatingInput, submit_rating
from app.models import Item, Rating
from tests.factories import make_items, make_user
from tests.services import lock_waiters, wait_until


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


def _leased_answer(db) -> tuple[int, RatingInput]:
    """A rater holding a lease on one item, and their answer to it."""
    rater = make_user(db, "twin").id
    make_items(db, 1)
    leased = lease_next_item(db, rater)
    db.commit()
    return rater, RatingInput(item_id=leased.item_id, verdict="preferred",
                              preferred_response_id=leased.responses[0].sample_id)


def test_a_retry_racing_its_first_attempt_replays_it(db):
    """Both copies of one answer pass the replay lookup before either is stored, then queue
    on the item's lock: the second must replay the first, not report a lost lease."""
    rater, answer = _leased_answer(db)
    item_id = answer.item_id
    blocker = get_sessionmaker()()
    blocker.execute(select(Item).where(Item.id == item_id).with_for_update())  # both copies queue here
    results: list = []
    waiting = threading.Barrier(3)

    def submit() -> None:
        session = get_sessionmaker()()
        try:
            waiting.wait()
            stored = submit_rating(session, rater, answer, idempotency_key="retry-1")
            session.commit()
            results.append((stored.rating.id, stored.created))
        except BaseException as error:  # surfaced by the assertion below
            results.append(error)
        finally:
            session.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    waiting.wait()
    # A fresh transaction per look: one transaction sees a single snapshot of pg_stat_activity.
    wait_until(lambda: lock_waiters(get_engine()) >= 2, timeout=10, what="both submits waiting on the item's lock")
    blocker.rollback()
    blocker.close()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(created for _, created in results) == [False, True], results
    assert results[0][0] == results[1][0]
    assert db.scalar(select(func.count()).select_from(Rating)) == 1


def test_a_retry_that_finds_the_lease_gone_replays_the_stored_answer(db):
    """The second copy looks for an earlier answer, then the first copy is stored (ending
    the lease) before the second reads the item: it must replay, not report a lost lease."""
    rater, answer = _leased_answer(db)
    at_item_query, go_on = threading.Event(), threading.Event()
    late = get_sessionmaker()()

    @event.listens_for(late.connection(), "before_cursor_execute")
    def pause_before_reading_the_item(conn, cursor, statement, *args):
        if "FOR UPDATE OF item" in statement and not at_item_query.is_set():
            at_item_query.set()
            go_on.wait(timeout=10)

    outcome: list = []
    second = threading.Thread(target=lambda: outcome.append(
        submit_rating(late, rater, answer, idempotency_key="retry-2")))
    second.start()
    assert at_item_query.wait(timeout=10)
    first = submit_rating(db, rater, answer, idempotency_key="retry-2")  # the first copy lands
    db.commit()
    go_on.set()
    second.join(timeout=10)
    late.close()
    assert first.created and outcome and not outcome[0].created
    assert outcome[0].rating.id == first.rating.id


def test_a_batch_lease_takes_its_items_in_ascending_order(db):
    """Bulk answers lock their items in ascending id order, and a batch lease must too:
    SKIP LOCKED still waits on a row whose newer version another transaction holds, so
    a lease that went back to a lower item after locking higher ones could wait in a
    cycle with an answer (PostgreSQL reported 40P01 at 128 batch raters). Here the
    lowest item is locked when the batch begins and released after its first query:
    the lease must not come back for it."""
    rater = make_user(db, "batch").id
    lowest, *higher = make_items(db, 4)
    holder = get_sessionmaker()()
    holder.execute(select(Item).where(Item.id == lowest).with_for_update())
    session = get_sessionmaker()()

    @event.listens_for(session.connection(), "after_cursor_execute")
    def release_after_the_first_candidate_query(conn, cursor, statement, *args):
        if "SKIP LOCKED" in statement and holder.in_transaction():
            holder.rollback()

    try:
        leased = [one.item_id for one in lease_items(session, rater, 3)]
        session.commit()
    finally:
        session.close()
        holder.close()
    assert leased == higher
