"""Dashboard fixtures: a signed-in admin or rater on a TestClient, checkpoints, the train queue."""

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from app.checkpoints.service import add_checkpoint
from app.feedback.leasing import lease_next_item
from app.feedback.ratings import RatingInput, submit_rating
from app.models import Checkpoint, CheckpointStatus
from tests.auth.web_client import client, csrf_from, login  # noqa: F401  (client is a fixture)
from tests.factories import make_user


@pytest.fixture
def admin_client(client, db) -> TestClient:
    make_user(db, "ada", admin=True, password="correct horse battery")
    db.commit()
    login(client, "ada")
    return client


@pytest.fixture
def rater_client(client, db) -> TestClient:
    make_user(db, "rita", password="correct horse battery")
    db.commit()
    login(client, "rita")
    return client


@pytest.fixture
def lineage(db) -> list[Checkpoint]:
    """v1 (base, current) -> v2 (ready), as a round would have produced it."""
    base = add_checkpoint(db, path="base", name="base-model", parent_id=None,
                          status=CheckpointStatus.current)
    child = add_checkpoint(db, path="round-1", name="round-1", parent_id=base.id,
                           metrics={"reward_model/eval_accuracy": 0.75, "dpo/loss": 0.52})
    db.commit()
    return [base, child]


@pytest.fixture
def train_queue(redis_url) -> Iterator[redis.Redis]:
    """The Redis list Celery's "train" queue lives in; emptied after the test so no
    later worker picks up a round id that no longer means anything."""
    connection = redis.Redis.from_url(redis_url)
    connection.delete("train")
    yield connection
    connection.delete("train")
    connection.close()


def page_csrf(client: TestClient, url: str = "/admin") -> str:
    return csrf_from(client.get(url).text)


def answer(db, user_id: int, item_id: int, verdict: str, preferred: int | None = None,
           time_spent_ms: int | None = None) -> None:
    """Lease and rate one item through the same services the rating page uses."""
    leased = lease_next_item(db, user_id)
    assert leased is not None and leased.item_id == item_id
    submit_rating(db, user_id, RatingInput(item_id=item_id, verdict=verdict, preferred_response_id=preferred,
                                           time_spent_ms=time_spent_ms))
    db.commit()
