"""POST /api/v1/prompts: bulk, all or none, admins only."""

from sqlalchemy import func, select

from app.models import Prompt


def test_admin_adds_prompts_and_gets_their_ids(client, admin, db):
    body = {"prompts": [{"text": "Write a haiku", "tags": ["poem"]},
                        {"text": "Explain DNS", "source": "faq"}]}
    response = client.post("/api/v1/prompts", json=body, headers=admin)
    assert response.status_code == 201
    ids = response.json()["ids"]
    stored = {p.id: p for p in db.scalars(select(Prompt))}
    assert [stored[i].text for i in ids] == ["Write a haiku", "Explain DNS"]
    assert stored[ids[0]].source == "api" and stored[ids[0]].tags == ["poem"]
    assert stored[ids[1]].source == "faq" and stored[ids[1]].active


def test_one_bad_prompt_stores_nothing_and_names_the_row(client, admin, db):
    body = {"prompts": [{"text": "fine"}, {"text": "   "}, {"text": "ok", "tags": ["x" * 65]}]}
    response = client.post("/api/v1/prompts", json=body, headers=admin)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "text"), (2, "tags")]
    assert db.scalar(select(func.count()).select_from(Prompt)) == 0


def test_prompts_need_a_token_and_an_admin(client, rater):
    body = {"prompts": [{"text": "hi"}]}
    assert client.post("/api/v1/prompts", json=body).status_code == 401
    assert client.post("/api/v1/prompts", json=body,
                       headers={"Authorization": "Bearer tl_nope"}).status_code == 401
    assert client.post("/api/v1/prompts", json=body, headers=rater).status_code == 403


def test_schema_errors_name_the_row_and_field(client, admin):
    response = client.post("/api/v1/prompts", json={"prompts": [{"text": "a"}, {"text": 5}]},
                           headers=admin)
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["index"] == 1 and body["errors"][0]["field"] == "text"
    assert body["field"] == "text" and "row 1" in body["detail"]
