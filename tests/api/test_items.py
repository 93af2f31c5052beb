"""POST /api/v1/items (bring your own responses) and GET /api/v1/items/next."""

from sqlalchemy import func, select

from app.models import Item, ItemKind, ItemPurpose, Prompt, Sample
from tests.factories import make_items


def pair(prompt="Say hi", overlap=1):
    return {"prompt": prompt, "overlap": overlap,
            "responses": [{"text": "hi", "source": "model-a"}, {"text": "hello", "source": "model-b"}]}


def test_admin_brings_items_that_raters_lease(client, admin, rater, db):
    body = {"items": [pair(), {"prompt": "Rate this", "responses": [{"text": "one answer"}]}]}
    response = client.post("/api/v1/items", json=body, headers=admin)
    assert response.status_code == 201
    compare_id, score_id = response.json()["ids"]
    compare, score = db.get(Item, compare_id), db.get(Item, score_id)
    assert (compare.kind, compare.purpose, score.kind) == (ItemKind.compare, ItemPurpose.client, ItemKind.score)
    samples = db.scalars(select(Sample).order_by(Sample.id)).all()
    assert [(s.checkpoint_id, s.source) for s in samples[:2]] == [(None, "model-a"), (None, "model-b")]
    # A client's prompt is rated, but never sampled by the generation worker.
    assert not db.get(Prompt, compare.prompt_id).active

    leased = client.get("/api/v1/items/next", headers=rater)
    assert leased.status_code == 200
    shown = leased.json()
    assert shown["item_id"] == compare_id and shown["kind"] == "compare"
    assert shown["prompt"] == "Say hi"
    assert sorted(r["text"] for r in shown["responses"]) == ["hello", "hi"]
    assert set(shown["responses"][0]) == {"id", "text"}  # no checkpoint, no source
    assert shown["lease_expires_at"]
    # A reload shows the same item, in the same order.
    assert client.get("/api/v1/items/next", headers=rater).json() == shown


def test_items_may_reuse_a_prompt_and_unknown_prompts_are_404_rows(client, admin, db):
    [item_id] = make_items(db, 1)
    prompt_id = db.get(Item, item_id).prompt_id
    ok = client.post("/api/v1/items", headers=admin, json={
        "items": [{"prompt_id": prompt_id, "responses": [{"text": "x"}, {"text": "y"}]}]})
    assert ok.status_code == 201
    before = db.scalar(select(func.count()).select_from(Sample))
    bad = client.post("/api/v1/items", headers=admin, json={"items": [
        pair(), {"prompt_id": 999_999, "responses": [{"text": "x"}]}, pair(overlap=0)]})
    assert bad.status_code == 422
    errors = bad.json()["errors"]
    assert [(e["index"], e["reason"]) for e in errors] == [(1, "not_found"), (2, "invalid")]
    assert errors[1]["field"] == "overlap"
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Sample)) == before


def test_an_item_needs_exactly_one_prompt(client, admin):
    both = {"prompt": "p", "prompt_id": 1, "responses": [{"text": "x"}]}
    response = client.post("/api/v1/items", headers=admin, json={"items": [both]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["index"] == 0


def test_nothing_left_is_204(client, rater):
    response = client.get("/api/v1/items/next", headers=rater)
    assert response.status_code == 204 and response.content == b""


def test_items_auth(client, rater):
    assert client.get("/api/v1/items/next").status_code == 401
    assert client.post("/api/v1/items", json={"items": [pair()]}, headers=rater).status_code == 403
