"""The closed loop on PostgreSQL + Redis + a real Celery worker and beat, driven through the API:
ratings -> a round -> a candidate -> blind comparisons by the raters -> the new current checkpoint."""

import random

import pytest
from sqlalchemy import func, select

from app.models import Item, ItemResponse, Rating, Sample
from simulation.rules import prefer
from tests.loop.conftest import api
from tests.services import wait_until

pytestmark = pytest.mark.slow


def rate_through_api(client, count: int, rng: random.Random, favourite=None) -> int:
    """A rater following the 'positive' rule, using only the public API; `favourite(sample_id)`,
    when given, says which response of a pair they prefer instead."""
    rated = 0
    while rated < count:
        response = client.get("/items/next")
        if response.status_code == 204:
            break
        item = response.json()
        a, b = item["responses"]
        choice = prefer("positive", item["prompt"], a["text"], b["text"], 0.1, rng)
        if favourite is not None:
            choice = "a" if favourite(a["id"]) else "b"
        body = {"item_id": item["item_id"], "verdict": "tie"} if choice == "tie" else {
            "item_id": item["item_id"], "verdict": "preferred",
            "preferred_response_id": (a if choice == "a" else b)["id"]}
        assert client.post("/ratings", json=body).status_code == 201
        rated += 1
    return rated


def rate_and_run_round(db, live_server: str, loop_state: dict, rng: random.Random, settings: dict) -> dict:
    """The raters answer 64 items from the base checkpoint through the API, then the admin launches
    a round with `settings` and waits for its end: the round as the API shows it."""
    tokens, base_id = loop_state["tokens"], loop_state["base_id"]
    ann, bob, admin = (api(live_server, tokens[n]) for n in ("ann", "bob", "admin"))
    assert rate_through_api(ann, 32, rng) + rate_through_api(bob, 32, rng) == 64
    launched = admin.post("/rounds", json=settings)
    if launched.status_code == 409:  # the rule tied too many pairs: a few more ratings
        wait_until(lambda: open_items_from(db, base_id) >= 16, 60, "more items")
        rate_through_api(ann, 16, rng)
        launched = admin.post("/rounds", json=settings)
    assert launched.status_code == 201, launched.text
    round_id = launched.json()["id"]

    def finished():
        body = admin.get(f"/rounds/{round_id}").json()
        return body if body["status"] not in ("queued", "running") else None

    return wait_until(finished, 300, "the round to finish", interval=1)


def items_from(checkpoint_id: int):
    return (select(Item.id).join(ItemResponse, ItemResponse.item_id == Item.id)
            .join(Sample, Sample.id == ItemResponse.sample_id).where(Sample.checkpoint_id == checkpoint_id))


def open_items_from(db, checkpoint_id: int) -> int:
    db.expire_all()
    return db.scalar(select(func.count(func.distinct(Item.id))).where(
        Item.id.in_(items_from(checkpoint_id)), Item.done.is_(False)))


def ratings_of_items_from(db, checkpoint_id: int) -> int:
    db.expire_all()
    return db.scalar(select(func.count(Rating.id)).where(Rating.item_id.in_(items_from(checkpoint_id))))


def test_ratings_become_a_candidate_that_raters_prefer_blind_and_that_then_generates(
        db, loop_state, live_server, start_worker):
    # All new items compare the candidate with the current checkpoint while one is under review.
    start_worker(pool_target=64, review_share=1.0)
    # The pool fills from the base checkpoint.
    wait_until(lambda: open_items_from(db, loop_state["base_id"]) >= 64, 120, "the pool to fill")

    rng = random.Random(0)
    result = rate_and_run_round(db, live_server, loop_state, rng, {"algorithm": "dpo", "policy_steps": 8})
    round_id = result["id"]
    ann, bob, admin = (api(live_server, loop_state["tokens"][n]) for n in ("ann", "bob", "admin"))
    assert result["status"] == "succeeded", (result["error"], result["gates"])
    assert result["ratings_used"] >= 64
    assert result["gates"] and all(gate["passed"] for gate in result["gates"]), result["gates"]
    detail = admin.get(f"/rounds/{round_id}").json()
    assert detail["report"]["policy"]["steps_run"] >= 1 and detail["report"]["watch"]["samples"]

    checkpoints = {c["id"]: c for c in admin.get("/checkpoints").json()}
    produced = checkpoints[result["produced_checkpoint_id"]]
    assert produced["status"] == "candidate" and produced["parent_id"] == loop_state["base_id"]
    assert checkpoints[loop_state["base_id"]]["is_current"]
    assert {"dpo"} <= {m["phase"] for m in admin.get(f"/rounds/{round_id}/metrics").json()}
    # While it is under review, nothing else trains.
    assert admin.post("/rounds", json={"algorithm": "dpo"}).status_code == 409

    # The raters compare it blind with the current checkpoint and, here, prefer it every time.
    # Items the pool drew from the base while the round trained come first (oldest first),
    # so they rate on until enough of their ratings are of the candidate.
    def from_candidate(sample_id: int) -> bool:
        db.expire_all()
        return db.get(Sample, sample_id).checkpoint_id == produced["id"]

    needed = 20 + 4  # the review's minimum of decisive comparisons, and a few to spare

    def compared_enough() -> bool:
        rate_through_api(ann, 1, rng, from_candidate)
        rate_through_api(bob, 1, rng, from_candidate)
        return ratings_of_items_from(db, produced["id"]) >= needed

    wait_until(compared_enough, 240, f"{needed} blind comparisons with the candidate")

    # The beat applies the verdict: the candidate becomes current.
    def promoted():
        views = {c["id"]: c for c in admin.get("/checkpoints").json()}
        return views if views[produced["id"]]["status"] == "current" else None

    views = wait_until(promoted, 60, "the raters' verdict", interval=1)
    assert "raters preferred it" in views[produced["id"]]["status_reason"]
    assert views[loop_state["base_id"]]["status"] == "ready"

    # Newly generated items come from the new checkpoint.
    wait_until(lambda: open_items_from(db, produced["id"]) > 0, 120, "items from the new checkpoint")
    item = ann.get("/items/next").json()
    assert item["kind"] == "compare" and len(item["responses"]) == 2
