"""POST /api/v1/ratings: answer a leased item, once, retry-safe."""

from sqlalchemy import event, func, select

from app.db import get_engine
from app.models import Item, Rating
from tests.factories import expire_leases, make_items


def lease(client, headers) -> dict:
    response = client.get("/api/v1/items/next", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def prefer_first(shown: dict, **extra) -> dict:
    return {"item_id": shown["item_id"], "verdict": "preferred",
            "preferred_response_id": shown["responses"][0]["id"], **extra}


def test_rater_leases_and_rates_with_provenance(client, rater, db):
    make_items(db, 2, checkpoint_id=None)
    shown = lease(client, rater)
    body = prefer_first(shown, comment="clearer", time_spent_ms=1234,
                        scores={str(shown["responses"][0]["id"]): 6})
    response = client.post("/api/v1/ratings", json=body, headers=rater)
    assert response.status_code == 201, response.text
    rating = response.json()
    assert rating["item_id"] == shown["item_id"] and rating["verdict"] == "preferred"
    assert rating["preferred_response_id"] == shown["responses"][0]["id"]
    assert rating["scores"] == {str(shown["responses"][0]["id"]): 6}
    assert rating["time_spent_ms"] == 1234 and rating["comment"] == "clearer"
    assert "provenance" not in rating and "shown" not in rating
    stored = db.get(Rating, rating["id"])
    assert [p["sample_id"] for p in stored.provenance] == [r["id"] for r in shown["responses"]]
    assert db.get(Item, shown["item_id"]).done
    # The next lease is the other item.
    assert lease(client, rater)["item_id"] != shown["item_id"]


def test_score_items_take_scores(client, rater, db):
    make_items(db, 1, responses=1)
    shown = lease(client, rater)
    assert shown["kind"] == "score"
    response_id = str(shown["responses"][0]["id"])
    missing = client.post("/api/v1/ratings", json={"item_id": shown["item_id"]}, headers=rater)
    assert missing.status_code == 422 and missing.json()["field"] == "scores"
    out_of_range = client.post("/api/v1/ratings", headers=rater,
                               json={"item_id": shown["item_id"], "scores": {response_id: 8}})
    assert out_of_range.status_code == 422 and out_of_range.json()["field"].startswith("scores")
    ok = client.post("/api/v1/ratings", json={"item_id": shown["item_id"], "scores": {response_id: 7}},
                     headers=rater)
    assert ok.status_code == 201 and ok.json()["scores"] == {response_id: 7}


def test_idempotency_key_replays_and_conflicts(client, rater, db):
    make_items(db, 2)
    shown = lease(client, rater)
    headers = rater | {"Idempotency-Key": "upload-1"}
    first = client.post("/api/v1/ratings", json=prefer_first(shown), headers=headers)
    again = client.post("/api/v1/ratings", json=prefer_first(shown), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    changed = prefer_first(shown) | {"verdict": "tie", "preferred_response_id": None}
    conflict = client.post("/api/v1/ratings", json=changed, headers=headers)
    assert conflict.status_code == 409
    assert db.scalar(select(func.count()).select_from(Rating)) == 1


def test_rating_errors(client, rater, make_rater, db):
    make_items(db, 1)
    # An item nobody leased to this rater: 409. An unknown one: 404.
    [other_item] = make_items(db, 1)
    assert client.post("/api/v1/ratings", headers=rater, json={
        "item_id": other_item, "verdict": "tie"}).status_code == 409
    assert client.post("/api/v1/ratings", headers=rater, json={
        "item_id": 987_654, "verdict": "tie"}).status_code == 404
    shown = lease(client, rater)
    bad = client.post("/api/v1/ratings", headers=rater, json={
        "item_id": shown["item_id"], "verdict": "preferred", "preferred_response_id": 123_456})
    assert bad.status_code == 422 and bad.json()["field"] == "preferred_response_id"
    wrong_type = client.post("/api/v1/ratings", headers=rater, json={
        "item_id": shown["item_id"], "verdict": "best"})
    assert wrong_type.status_code == 422 and wrong_type.json()["field"] == "verdict"
    unknown = client.post("/api/v1/ratings", headers=rater, json={
        "item_id": shown["item_id"], "verdict": "tie", "colour": "red"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "colour"
    assert client.post("/api/v1/ratings", json=prefer_first(shown)).status_code == 401


def test_a_late_answer_is_kept_while_the_item_still_needs_it(client, rater, make_rater, db):
    make_items(db, 1)
    shown = lease(client, rater)
    expire_leases(db)
    assert client.post("/api/v1/ratings", json=prefer_first(shown), headers=rater).status_code == 201


def test_lease_next_answers_and_leases_in_one_request(client, rater, db):
    make_items(db, 2)
    shown = lease(client, rater)
    headers = rater | {"Idempotency-Key": "one-request-1"}
    response = client.post("/api/v1/ratings?lease_next=true", json=prefer_first(shown), headers=headers)
    assert response.status_code == 201, response.text
    answered = response.json()
    following = answered["next_item"]
    assert answered["item_id"] == shown["item_id"]
    assert following["item_id"] != shown["item_id"] and len(following["responses"]) == 2
    # It is a real lease: GET /items/next resumes it, and it can be answered.
    assert lease(client, rater)["item_id"] == following["item_id"]
    # A retry of the first answer replays it and hands back the lease the rater holds.
    replay = client.post("/api/v1/ratings?lease_next=true", json=prefer_first(shown), headers=headers)
    assert replay.status_code == 200 and replay.json()["id"] == answered["id"]
    assert replay.json()["next_item"]["item_id"] == following["item_id"]
    last = client.post("/api/v1/ratings?lease_next=true", json=prefer_first(following), headers=rater)
    assert last.status_code == 201 and last.json()["next_item"] is None
    assert db.scalar(select(func.count()).select_from(Rating)) == 2
    # And nothing is left to lease.
    assert client.get("/api/v1/items/next", headers=rater).status_code == 204


def test_an_item_with_one_response_takes_a_thumb(client, rater, db):
    make_items(db, 2, responses=1)
    make_items(db, 1, responses=2)
    shown = lease(client, rater)
    assert shown["kind"] == "score"
    bad = client.post("/api/v1/ratings", json={"item_id": shown["item_id"], "thumb": "sideways"}, headers=rater)
    assert bad.status_code == 422 and bad.json()["field"] == "thumb"
    up = client.post("/api/v1/ratings", json={"item_id": shown["item_id"], "thumb": "up"}, headers=rater)
    assert up.status_code == 201 and up.json()["thumb"] == "up" and up.json()["scores"] == {}
    # A thumb and a score together.
    second = lease(client, rater)
    response_id = str(second["responses"][0]["id"])
    both = client.post("/api/v1/ratings", json={"item_id": second["item_id"], "thumb": "down",
                                                "scores": {response_id: 2}}, headers=rater)
    assert both.status_code == 201 and both.json()["thumb"] == "down" and both.json()["scores"] == {response_id: 2}
    assert sorted(db.scalars(select(Rating.thumb))) == ["down", "up"]
    # Not on an item of two responses.
    pair = lease(client, rater)
    assert pair["kind"] == "compare"
    refused = client.post("/api/v1/ratings", headers=rater,
                          json={"item_id": pair["item_id"], "verdict": "tie", "thumb": "up"})
    assert refused.status_code == 422 and "items with one response" in refused.json()["detail"]


def test_a_rating_costs_a_fixed_number_of_statements(client, rater, db):
    """The raters' hot path, counted so that it cannot grow unnoticed (bench/README.md has the
    profile): besides BEGIN and COMMIT, a new lease is the token's lookup and 4 statements,
    an answer the token's lookup and 4."""
    make_items(db, 2)
    first = lease(client, rater)  # the pool's first connection sets itself up: not the hot path
    client.post("/api/v1/ratings", json=prefer_first(first), headers=rater)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(get_engine(), "before_cursor_execute", count)
    try:
        shown = lease(client, rater)
        leasing = len(statements)
        response = client.post("/api/v1/ratings", json=prefer_first(shown), headers=rater)
    finally:
        event.remove(get_engine(), "before_cursor_execute", count)
    assert response.status_code == 201 and shown["item_id"] != first["item_id"]
    assert leasing == 5, statements[:leasing]
    assert len(statements) - leasing == 5, statements[leasing:]
