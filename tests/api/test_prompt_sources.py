"""GET/PUT /api/v1/prompt-sources: how the pool draws training pairs for each source (admins only)."""

from app.models import PromptSource


def test_admin_sets_a_source_to_uncertainty_and_lists_it(client, admin, db):
    client.post("/api/v1/prompts", json={"prompts": [{"text": "a", "source": "faq"}, {"text": "b"}]},
                headers=admin)
    response = client.put("/api/v1/prompt-sources/faq", json={"selection": "uncertainty", "random_share": 0.1},
                          headers=admin)
    assert response.status_code == 200
    assert response.json() == {"name": "faq", "prompts": 1, "active_prompts": 1, "selection": "uncertainty",
                               "random_share": 0.1, "candidates": 4, "responses": 2}
    listed = client.get("/api/v1/prompt-sources", headers=admin).json()
    assert [(s["name"], s["selection"]) for s in listed] == [("api", "random"), ("faq", "uncertainty")]
    assert db.get(PromptSource, "faq").random_share == 0.1
    # Set back: the same row, changed.
    client.put("/api/v1/prompt-sources/faq", json={"selection": "random"}, headers=admin)
    db.expire_all()
    assert db.get(PromptSource, "faq").selection == "random"


def test_a_source_without_prompts_yet_can_be_set_up_first(client, admin):
    response = client.put("/api/v1/prompt-sources/next-week", json={"selection": "uncertainty", "candidates": 8},
                          headers=admin)
    assert response.status_code == 200 and response.json()["prompts"] == 0


def test_bad_settings_are_refused_and_change_nothing(client, admin, db):
    for body in ({"selection": "clever"}, {"selection": "uncertainty", "random_share": 1.5},
                 {"selection": "uncertainty", "candidates": 1}, {"selection": "random", "extra": 1}, {"responses": 3}):
        assert client.put("/api/v1/prompt-sources/faq", json=body, headers=admin).status_code == 422, body
    assert client.put(f"/api/v1/prompt-sources/{'x' * 129}", json={"selection": "random"},
                      headers=admin).status_code == 422
    assert db.get(PromptSource, "faq") is None


def test_prompt_sources_are_for_admins(client, rater):
    assert client.get("/api/v1/prompt-sources").status_code == 401
    assert client.get("/api/v1/prompt-sources", headers=rater).status_code == 403
    assert client.put("/api/v1/prompt-sources/faq", json={"selection": "random"}, headers=rater).status_code == 403
