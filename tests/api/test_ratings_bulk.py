"""POST /api/v1/ratings/bulk: offline work against leased items, all or none."""

from sqlalchemy import func, select

from app.models import Rating
from tests.factories import expire_leases, make_items


def take(client, headers, count) -> list[dict]:
    response = client.post("/api/v1/items/leases", json={"count": count}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_a_vendor_leases_a_batch_that_others_do_not_get(client, rater, make_rater, db):
    make_items(db, 4)
    shown = take(client, rater, 3)
    assert len({s["item_id"] for s in shown}) == 3
    assert set(shown[0]) == {"item_id", "kind", "prompt", "messages", "responses", "lease_expires_at"}
    assert shown[0]["messages"] == [{"role": "user", "content": shown[0]["prompt"]}]
    # Asking again returns the leases held, not more items.
    assert [s["item_id"] for s in take(client, rater, 3)] == [s["item_id"] for s in shown]
    assert len(take(client, rater, 10)) == 4
    assert take(client, make_rater("other"), 5) == []
    for count in (0, 101, "3"):
        response = client.post("/api/v1/items/leases", json={"count": count}, headers=rater)
        assert response.status_code == 422 and response.json()["field"] == "count"


def test_bulk_stores_every_row_or_none(client, rater, db):
    make_items(db, 3)
    shown = take(client, rater, 3)
    expire_leases(db)  # offline work comes back late: still accepted while items need answers
    rows = [{"item_id": s["item_id"], "verdict": "preferred",
             "preferred_response_id": s["responses"][1]["id"]} for s in shown]
    bad = rows[:2] + [{"item_id": shown[2]["item_id"], "verdict": "preferred"},
                      {"item_id": 999_999, "verdict": "tie"}]
    rejected = client.post("/api/v1/ratings/bulk", json={"ratings": bad}, headers=rater)
    assert rejected.status_code == 422
    errors = rejected.json()["errors"]
    assert [(e["index"], e["field"], e["reason"]) for e in errors] == [
        (2, "preferred_response_id", "invalid"), (3, None, "not_found")]
    assert db.scalar(select(func.count()).select_from(Rating)) == 0

    stored = client.post("/api/v1/ratings/bulk", json={"ratings": rows}, headers=rater)
    assert stored.status_code == 201, stored.text
    body = stored.json()
    assert body["created"] == 3
    assert [r["item_id"] for r in body["ratings"]] == [s["item_id"] for s in shown]
    # The same upload again replays: 200, nothing new.
    again = client.post("/api/v1/ratings/bulk", json={"ratings": rows}, headers=rater)
    assert again.status_code == 200 and again.json()["created"] == 0
    assert again.json()["ratings"] == body["ratings"]


def test_bulk_refuses_items_the_rater_was_not_given(client, rater, db):
    [item_id] = make_items(db, 1)
    response = client.post("/api/v1/ratings/bulk", headers=rater,
                           json={"ratings": [{"item_id": item_id, "verdict": "tie"}]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["reason"] == "conflict"


def test_bulk_schema_errors_name_rows(client, rater):
    response = client.post("/api/v1/ratings/bulk", headers=rater, json={
        "ratings": [{"item_id": 1, "verdict": "tie"}, {"item_id": "x", "verdict": "tie"}]})
    assert response.status_code == 422
    assert response.json()["errors"][0] | {"message": None} == {
        "index": 1, "field": "item_id", "message": None, "reason": "invalid"}
    assert client.post("/api/v1/ratings/bulk", json={"ratings": []}, headers=rater).status_code == 422


def test_rows_repeating_each_other_or_earlier_answers(client, rater, db):
    """All rows are stored in one pass; a row repeating an earlier one of the same upload,
    or an answer stored before, replays it when the body matches and conflicts when not."""
    make_items(db, 3)
    first, second, third = take(client, rater, 3)
    tie = lambda shown, **extra: {"item_id": shown["item_id"], "verdict": "tie", **extra}  # noqa: E731
    assert client.post("/api/v1/ratings/bulk", headers=rater,
                       json={"ratings": [tie(first, idempotency_key="k1")]}).status_code == 201

    # The stored one again, a new one twice (same body): one new rating, three replays.
    rows = [tie(second), tie(first, idempotency_key="k1"), tie(second), tie(first)]
    response = client.post("/api/v1/ratings/bulk", headers=rater, json={"ratings": rows})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] == 1
    ids = [r["id"] for r in body["ratings"]]
    assert ids[0] == ids[2] and ids[1] == ids[3] and ids[0] != ids[1]

    # A repeat with another body, or a key used on another item: conflicts, nothing stored.
    conflicting = [tie(third, idempotency_key="k3"), tie(third, comment="changed my mind")]
    reused_key = [tie(third, idempotency_key="k1")]
    for rows, index in ((conflicting, 1), (reused_key, 0)):
        response = client.post("/api/v1/ratings/bulk", headers=rater, json={"ratings": rows})
        assert response.status_code == 422, response.text
        assert [(e["index"], e["reason"]) for e in response.json()["errors"]] == [(index, "conflict")]
    assert db.scalar(select(func.count()).select_from(Rating)) == 2
