"""GET /api/v1/ratings: filtered and paged, for admins."""

from datetime import UTC, datetime, timedelta

from app.models import Checkpoint, Rating
from tests.api.test_ratings import lease, prefer_first
from tests.factories import make_items


def rate_all(client, headers, count):
    ids = []
    for _ in range(count):
        shown = lease(client, headers)
        response = client.post("/api/v1/ratings", json=prefer_first(shown), headers=headers)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


def test_admin_pages_through_ratings_with_filters(client, admin, make_rater, db):
    checkpoint = Checkpoint(version=1, path="/tmp/ckpt")
    db.add(checkpoint)
    db.commit()
    make_items(db, 3, checkpoint_id=checkpoint.id)
    make_items(db, 2, prompt_text="Other {i}")
    ann, bob = make_rater("ann"), make_rater("bob")
    ann_ids = rate_all(client, ann, 3)
    bob_ids = rate_all(client, bob, 2)

    first = client.get("/api/v1/ratings", params={"limit": 2}, headers=admin)
    assert first.status_code == 200
    page = first.json()
    assert [r["id"] for r in page["ratings"]] == sorted(ann_ids + bob_ids)[:2]
    rest = client.get("/api/v1/ratings", params={"cursor": page["next_cursor"]}, headers=admin).json()
    assert [r["id"] for r in rest["ratings"]] == sorted(ann_ids + bob_ids)[2:]
    assert rest["next_cursor"] is None

    record = page["ratings"][0]
    assert record["rater"] == "ann" and record["rater_id"]
    assert {s["checkpoint_id"] for s in record["shown"]} == {checkpoint.id}

    by_bob = client.get("/api/v1/ratings", params={"rater": "bob"}, headers=admin).json()
    assert sorted(r["id"] for r in by_bob["ratings"]) == sorted(bob_ids)
    by_checkpoint = client.get("/api/v1/ratings", params={"checkpoint_id": checkpoint.id},
                               headers=admin).json()
    assert len(by_checkpoint["ratings"]) == 3
    one_item = db.get(Rating, bob_ids[0]).item_id
    by_item = client.get("/api/v1/ratings", params={"item_id": one_item}, headers=admin).json()
    assert [r["id"] for r in by_item["ratings"]] == [bob_ids[0]]

    later = datetime.now(UTC) + timedelta(hours=1)
    none_yet = client.get("/api/v1/ratings", params={"since": later.isoformat()}, headers=admin)
    assert none_yet.json()["ratings"] == []
    # A time without a zone is UTC.
    naive = client.get("/api/v1/ratings", params={"until": "2000-01-01T00:00:00"}, headers=admin)
    assert naive.status_code == 200 and naive.json()["ratings"] == []


def test_listing_errors_and_auth(client, admin, rater):
    assert client.get("/api/v1/ratings").status_code == 401
    assert client.get("/api/v1/ratings", headers=rater).status_code == 403
    backwards = client.get("/api/v1/ratings", headers=admin, params={
        "since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"})
    assert backwards.status_code == 422 and backwards.json()["field"] == "until"
    for params, field in [({"cursor": "abc"}, "cursor"), ({"limit": 0}, "limit"),
                          ({"item_id": 2**40}, "item_id"), ({"since": "yesterday"}, "since"),
                          # Before year 1 in UTC (found by schemathesis on the score export).
                          ({"until": "0001-01-01T01:00:00+03:00"}, "until"),
                          # A NUL that PostgreSQL refuses (found on the score export, mid-stream).
                          ({"rater": "ann\x00"}, "rater")]:
        exports = ("/api/v1/export/scores", "/api/v1/export/preferences") if field not in ("cursor", "limit") else ()
        for path in ("/api/v1/ratings", *exports):
            response = client.get(path, params=params, headers=admin)
            assert response.status_code == 422 and response.json()["field"] == field, (path, params)
