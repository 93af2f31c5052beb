"""A round that cannot work is refused at launch, with the numbers (PostgreSQL + Redis)."""

import json

import pytest
from sqlalchemy import select

from app.checkpoints.service import add_checkpoint
from app.models import CheckpointStatus, TrainingRound
from app.rounds.service import auto_round_due
from app.settings import get_settings
from tests.admin.conftest import train_queue  # noqa: F401  (train_queue is a fixture)
from tests.factories import rate_items


@pytest.fixture
def current(db) -> int:
    checkpoint = add_checkpoint(db, path="base", name="base", parent_id=None, status=CheckpointStatus.current)
    db.commit()
    return checkpoint.id


def test_too_few_ratings_are_refused_with_the_numbers_and_nothing_queued(client, db, admin, current, train_queue):
    rate_items(db, 4, ties=2, checkpoint_id=current)
    response = client.post("/api/v1/rounds", json={"algorithm": "dpo"}, headers=admin)
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert "6 rating(s) give 4 decisive comparison(s), 2 tie(s) and 0 thumb(s)" in detail
    assert f"at least {get_settings().min_round_comparisons} decisive comparisons" in detail
    assert "TUNELOOP_MIN_ROUND_COMPARISONS" in detail
    assert db.scalars(select(TrainingRound)).all() == []
    assert train_queue.llen("train") == 0


def test_enough_ratings_launch(client, db, admin, current, train_queue):
    rate_items(db, get_settings().min_round_comparisons, checkpoint_id=current)
    response = client.post("/api/v1/rounds", json={"algorithm": "ppo"}, headers=admin)
    assert response.status_code == 201, response.text
    [message] = train_queue.lrange("train", 0, -1)
    assert json.loads(message)["headers"]["argsrepr"] == f"[{response.json()['id']}]"


def test_no_round_while_a_candidate_is_under_review(client, db, admin, current, train_queue):
    rate_items(db, get_settings().min_round_comparisons, checkpoint_id=current)
    add_checkpoint(db, path="round-1", name="round-1", parent_id=None, status=CheckpointStatus.candidate)
    db.commit()
    response = client.post("/api/v1/rounds", json={"algorithm": "dpo"}, headers=admin)
    assert response.status_code == 409
    assert "is a candidate under review" in response.json()["detail"]


def test_the_minimum_is_a_setting(client, db, admin, current, train_queue, monkeypatch):
    rate_items(db, 4, checkpoint_id=current)
    monkeypatch.setattr(get_settings(), "min_round_comparisons", 4)
    assert client.post("/api/v1/rounds", json={"algorithm": "dpo"}, headers=admin).status_code == 201


def test_automatic_rounds_wait_for_enough_ratings(db, current, monkeypatch):
    monkeypatch.setattr(get_settings(), "auto_round_every_ratings", 1)
    rate_items(db, 4, checkpoint_id=current)
    assert not auto_round_due(db)
    monkeypatch.setattr(get_settings(), "min_round_comparisons", 4)
    assert auto_round_due(db)


def test_a_round_can_leave_raters_out_and_counts_what_remains(client, db, admin, current, train_queue):
    minimum = get_settings().min_round_comparisons
    rate_items(db, minimum, checkpoint_id=current, rater="ann")
    rate_items(db, 4, checkpoint_id=current, rater="mallory")
    unknown = client.post("/api/v1/rounds", json={"algorithm": "dpo", "exclude_raters": ["nobody"]}, headers=admin)
    assert unknown.status_code == 422 and "no user named 'nobody'" in unknown.text
    without_ann = client.post("/api/v1/rounds", json={"algorithm": "dpo", "exclude_raters": ["ann"]}, headers=admin)
    assert without_ann.status_code == 409 and "4 rating(s) give 4 decisive" in without_ann.json()["detail"]
    launched = client.post("/api/v1/rounds", json={"algorithm": "dpo", "exclude_raters": ["mallory"]}, headers=admin)
    assert launched.status_code == 201, launched.text
    [round_] = db.scalars(select(TrainingRound)).all()
    assert round_.config["exclude_raters"] == ["mallory"]

    # What the round trains on: ann's ratings only.
    from app.rounds.schemas import RoundSettings
    from worker.rounds import snapshot_ratings

    pairs, _, weights = snapshot_ratings(round_.id, RoundSettings.model_validate(round_.config))
    assert len(pairs) == minimum and set(weights) == {"ann"}


def test_a_round_takes_thumbs_for_its_reward_model(client, db, admin, current, train_queue):
    from app.feedback.leasing import lease_next_item
    from app.feedback.ratings import RatingInput, submit_rating
    from app.models import Item
    from app.rounds.schemas import RoundSettings
    from tests.factories import make_items, make_user
    from worker.rounds import snapshot_ratings

    rate_items(db, get_settings().min_round_comparisons, checkpoint_id=current, rater="ann")
    bob = make_user(db, "bob").id
    for n, item_id in enumerate(make_items(db, 3, responses=1, checkpoint_id=current)):
        assert lease_next_item(db, bob).item_id == item_id
        submit_rating(db, bob, RatingInput(item_id=item_id, thumb="up" if n else "down"))
    db.commit()
    launched = client.post("/api/v1/rounds", json={"algorithm": "ppo"}, headers=admin)
    assert launched.status_code == 201, launched.text
    snapshot = snapshot_ratings(launched.json()["id"], RoundSettings(algorithm="ppo"))
    assert len(snapshot.pairs) == get_settings().min_round_comparisons
    assert sorted(t.good for t in snapshot.thumbs) == [False, True, True]
    texts = {db.get(Item, i).responses[0].sample.text for i in db.scalars(select(Item.id))}
    assert {t.response for t in snapshot.thumbs} <= texts and set(snapshot.rater_weights) == {"ann", "bob"}
