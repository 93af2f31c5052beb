"""Leasing and answering items: the rules raters rely on, on both backends."""


import pytest
from sqlalchemy import func, select

from app.errors import Conflict, InvalidInput, InvalidRows, LeaseExpired, NotFound
from app.feedback.bulk import submit_ratings
from app.feedback.leasing import lease_items, lease_next_item, open_items_for, skip_item
from app.feedback.ratings import RatingInput, submit_rating
from app.models import Item, Lease, Rating
from tests.factories import expire_leases, make_items, make_user


def prefer_first(leased) -> RatingInput:
    first = leased.responses[0].sample_id
    return RatingInput(item_id=leased.item_id, verdict="preferred", preferred_response_id=first)


def test_overlap_is_filled_by_distinct_raters(any_db):
    db = any_db
    raters = [make_user(db, f"r{i}").id for i in range(3)]
    [item_id] = make_items(db, 1, overlap=2)
    first = lease_next_item(db, raters[0])
    second = lease_next_item(db, raters[1])
    db.commit()
    assert first.item_id == second.item_id == item_id
    # Two live leases fill overlap 2: the third rater gets nothing.
    assert lease_next_item(db, raters[2]) is None
    submit_rating(db, raters[0], prefer_first(first))
    submit_rating(db, raters[1], prefer_first(second))
    db.commit()
    item = db.get(Item, item_id)
    assert (item.answers, item.done) == (2, True)
    # Nobody answers the same item twice.
    assert lease_next_item(db, raters[0]) is None


def test_reload_resumes_the_same_lease(any_db):
    db = any_db
    rater = make_user(db, "r").id
    make_items(db, 3)
    first = lease_next_item(db, rater)
    assert lease_next_item(db, rater).item_id == first.item_id
    assert open_items_for(db, rater) == 3


def test_expired_lease_returns_item_to_pool_but_late_answer_is_kept(any_db):
    db = any_db
    slow, fast = make_user(db, "slow").id, make_user(db, "fast").id
    [item_id] = make_items(db, 1, overlap=1)
    leased = lease_next_item(db, slow)
    expire_leases(db)
    # The item still needs an answer, so the late answer is kept...
    stored = submit_rating(db, slow, prefer_first(leased))
    assert stored.created
    db.commit()
    # ...and once it is done, a late answer is refused with a clear message.
    [other_id] = make_items(db, 1, overlap=1)
    late = lease_next_item(db, slow)
    assert late.item_id == other_id
    expire_leases(db, other_id)
    taken = lease_next_item(db, fast)
    assert taken.item_id == other_id
    submit_rating(db, fast, prefer_first(taken))
    db.commit()
    with pytest.raises(LeaseExpired, match="expired"):
        submit_rating(db, slow, prefer_first(late))


def test_submit_is_idempotent_and_a_changed_body_conflicts(any_db):
    db = any_db
    rater = make_user(db, "r").id
    make_items(db, 2)
    leased = lease_next_item(db, rater)
    answer = prefer_first(leased)
    first = submit_rating(db, rater, answer, idempotency_key="k1")
    db.commit()
    again = submit_rating(db, rater, answer, idempotency_key="k1")
    assert (first.created, again.created, again.rating.id) == (True, False, first.rating.id)
    # A double click without a key stores one rating too.
    assert not submit_rating(db, rater, answer).created
    changed = RatingInput(item_id=answer.item_id, verdict="tie")
    with pytest.raises(Conflict):
        submit_rating(db, rater, changed, idempotency_key="k1")
    with pytest.raises(Conflict):
        submit_rating(db, rater, changed)
    assert db.scalar(select(func.count()).select_from(Rating)) == 1
    provenance = db.scalar(select(Rating)).provenance
    assert [p["sample_id"] for p in provenance] == [
        r.sample_id for r in leased.responses]


def test_bad_answers_are_refused_by_field(any_db):
    db = any_db
    rater = make_user(db, "r").id
    make_items(db, 1)
    leased = lease_next_item(db, rater)
    item_id = leased.item_id
    for answer, field in [
        (RatingInput(item_id=item_id, verdict="maybe"), "verdict"),
        (RatingInput(item_id=item_id, verdict="preferred", preferred_response_id=999), "preferred_response_id"),
        (RatingInput(item_id=item_id, verdict="tie", scores={999: 3}), "scores"),
        (RatingInput(item_id=item_id, verdict="tie",
                     scores={leased.responses[0].sample_id: 9}), "scores"),
    ]:
        with pytest.raises(InvalidInput) as error:
            submit_rating(db, rater, answer)
        assert error.value.field == field
    with pytest.raises(NotFound):
        submit_rating(db, rater, RatingInput(item_id=12345, verdict="tie"))


def test_unleased_item_is_a_conflict_and_skip_moves_on(any_db):
    db = any_db
    rater = make_user(db, "r").id
    first_id, second_id = make_items(db, 2)
    with pytest.raises(LeaseExpired, match="not leased to you"):
        submit_rating(db, rater, RatingInput(item_id=first_id, verdict="tie"))
    assert lease_next_item(db, rater).item_id == first_id
    skip_item(db, rater, first_id)
    assert lease_next_item(db, rater).item_id == second_id
    assert open_items_for(db, rater) == 1


def test_score_items_need_a_score(any_db):
    db = any_db
    rater = make_user(db, "r").id
    make_items(db, 1, responses=1)
    leased = lease_next_item(db, rater)
    sample_id = leased.responses[0].sample_id
    with pytest.raises(InvalidInput, match="need a score"):
        submit_rating(db, rater, RatingInput(item_id=leased.item_id))
    assert submit_rating(db, rater, RatingInput(item_id=leased.item_id, scores={sample_id: 6})).created


def test_full_items_are_marked_until_their_first_lease_expires_or_is_skipped(any_db):
    db = any_db
    first, second, third = (make_user(db, f"r{i}").id for i in range(3))
    [item_id] = make_items(db, 1, overlap=2)
    lease_next_item(db, first)
    db.commit()
    assert db.get(Item, item_id).full_until is None  # one slot still open
    taken = lease_next_item(db, second)
    db.commit()
    db.expire_all()
    earliest = db.scalar(select(func.min(Lease.expires_at)))
    assert db.get(Item, item_id).full_until == earliest <= taken.expires_at
    assert lease_next_item(db, third) is None
    skip_item(db, first, item_id)  # a slot frees up: the mark goes
    db.commit()
    db.expire_all()
    assert db.get(Item, item_id).full_until is None
    assert lease_next_item(db, third).item_id == item_id
    db.commit()
    # Full again (second and third); when their leases run out it is open again.
    assert db.get(Item, item_id).full_until is not None
    fourth = make_user(db, "r4").id
    assert lease_next_item(db, fourth) is None
    expire_leases(db)
    assert lease_next_item(db, fourth).item_id == item_id


def test_a_batch_is_leased_and_answered_in_one_pass(any_db):
    db = any_db
    rater, other = make_user(db, "vendor").id, make_user(db, "other").id
    make_items(db, 5, overlap=1)
    batch = lease_items(db, rater, 3)
    db.commit()
    assert [one.item_id for one in batch] == sorted(one.item_id for one in batch)
    assert len(lease_items(db, other, 5)) == 2  # the rest; the batch's items are full
    db.commit()

    answers = [(prefer_first(one), f"k{one.item_id}") for one in batch]
    invalid = answers[:2] + [(RatingInput(item_id=batch[2].item_id, verdict="maybe"), None)]
    with pytest.raises(InvalidRows) as refused:
        submit_ratings(db, rater, invalid)
    db.rollback()
    assert [e["index"] for e in refused.value.errors] == [2]
    assert db.scalar(select(func.count()).select_from(Rating)) == 0

    # In reverse order, with the first row repeated: stored once each, in one pass.
    stored = submit_ratings(db, rater, answers[::-1] + answers[:1])
    db.commit()
    assert [s.created for s in stored] == [True, True, True, False]
    assert stored[3].rating.id == stored[2].rating.id
    assert db.scalar(select(func.count()).select_from(Rating)) == 3
    assert db.scalar(select(func.count()).select_from(Lease).where(Lease.user_id == rater)) == 0
    assert all(item.done and item.answers == 1 for item in db.scalars(
        select(Item).where(Item.id.in_([one.item_id for one in batch]))))
