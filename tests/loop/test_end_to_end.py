"""The closed loop on PostgreSQL + Redis + a real Celery worker, driven through the API."""

import random

import pytest
from sqlalchemy import func, select

from app.models import Item, ItemResponse, Sample
from tests.loop.conftest import api
from tests.services import wait_until
from worker.rules import prefer

pytestmark = pytest.mark.slow


def rate_through_api(client, count: int, rng: random.Random) -> int:
    """A rater following the 'positive' rule, using only the public API."""
    rated = 0
    while rated < count:
        response = client.get("/items/next")
        if response.status_code == 204:
            break
        item = response.json()
        a, b = item["responses"]
        choice = prefer("positive", item["prompt"], a["text"], b["text"], 0.1, rng)
        body = {"item_id": item["item_id"], "verdict": "tie"} if choice == "tie" else {
            "item_id": item["item_id"], "verdict": "preferred",
            "preferred_response_id": (a if choice == "a" else b)["id"]}
        assert client.post("/ratings", json=body).status_code == 201
        rated += 1
    return rated


def open_items_from(db, checkpoint_id: int) -> int:
    db.expire_all()
    return db.scalar(
        select(func.count(func.distinct(Item.id)))
        .join(ItemResponse, ItemResponse.item_id == Item.id)
        .join(Sample, Sample.id == ItemResponse.sample_id)
        .where(Item.done.is_(False), Sample.checkpoint_id == checkpoint_id)
    )


def test_ratings_become_a_new_current_checkpoint_that_generates_the_next_items(
        db, loop_state, live_server, start_worker):
    start_worker()
    # The pool fills from the base checkpoint.
    wait_until(lambda: open_items_from(db, loop_state["base_id"]) >= 16, 120, "the pool to fill")

    rng = random.Random(0)
    ann, bob = (api(live_server, loop_state["tokens"][n]) for n in ("ann", "bob"))
    assert rate_through_api(ann, 16, rng) + rate_through_api(bob, 16, rng) >= 16

    admin = api(live_server, loop_state["tokens"]["admin"])
    launched = admin.post("/rounds", json={"algorithm": "dpo", "policy_steps": 8})
    assert launched.status_code == 201, launched.text
    round_id = launched.json()["id"]

    def finished():
        body = admin.get(f"/rounds/{round_id}").json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    result = wait_until(finished, 300, "the round to finish", interval=1)
    assert result["status"] == "succeeded", result
    assert result["ratings_used"] >= 16

    checkpoints = {c["id"]: c for c in admin.get("/checkpoints").json()}
    produced = checkpoints[result["produced_checkpoint_id"]]
    assert produced["is_current"] and produced["parent_id"] == loop_state["base_id"]
    assert not checkpoints[loop_state["base_id"]]["is_current"]
    metrics = admin.get(f"/rounds/{round_id}/metrics").json()
    assert {"reward_model", "dpo"} <= {m["phase"] for m in metrics}

    # Newly generated items come from the new checkpoint.
    wait_until(lambda: open_items_from(db, produced["id"]) > 0, 120, "items from the new checkpoint")
    item = ann.get("/items/next").json()
    assert item["kind"] == "compare" and len(item["responses"]) == 2
