"""The progress line: answered today, and what is left (counted up to a cap)."""

from app.feedback.leasing import lease_next_item, open_items_for, open_items_up_to
from app.feedback.ratings import RatingInput, submit_rating
from app.pages.progress import LEFT_CAP, Progress, progress_for
from tests.factories import make_items, make_user


def test_progress_counts_todays_answers_and_open_items(db):
    rater = make_user(db, "rita").id
    make_items(db, 4)
    leased = lease_next_item(db, rater)
    submit_rating(db, rater, RatingInput(item_id=leased.item_id, verdict="tie"))
    assert progress_for(db, rater) == Progress(rated_today=1, left=3)
    assert open_items_up_to(db, rater, 2) == 2
    assert open_items_up_to(db, rater, 10) == open_items_for(db, rater) == 3
    assert Progress(rated_today=0, left=LEFT_CAP).left_label == f"{LEFT_CAP}+"
