"""Bad input never becomes a 500: 413 for big bodies, 429 when too fast, 4xx for junk."""

import pytest

from app.settings import get_settings
from tests.conftest import reset_app_caches
from tests.factories import make_items


@pytest.fixture
def setting(monkeypatch):
    """Change a TUNELOOP_ setting for one test; the cached settings follow, both ways."""
    def change(name: str, value: str) -> None:
        monkeypatch.setenv(f"TUNELOOP_{name.upper()}", value)
        reset_app_caches()
    yield change
    monkeypatch.undo()
    reset_app_caches()


def test_oversized_body_is_413_declared_or_chunked(client, admin, setting):
    setting("max_body_bytes", "1000")
    body = b'{"prompts": [{"text": "' + b"x" * 2000 + b'"}]}'
    headers = admin | {"Content-Type": "application/json"}
    declared = client.post("/api/v1/prompts", content=body, headers=headers)
    assert declared.status_code == 413

    def chunks():  # no Content-Length: the body arrives chunked
        for start in range(0, len(body), 100):
            yield body[start:start + 100]

    streamed = client.post("/api/v1/prompts", content=chunks(), headers=headers)
    assert streamed.status_code == 413, streamed.text
    assert "over 1000 bytes" in streamed.json()["detail"]


def test_too_many_requests_is_429_with_retry_after(client, rater, make_rater, setting):
    setting("api_rate_per_minute", "3")
    statuses = [client.get("/api/v1/items/next", headers=rater).status_code for _ in range(4)]
    assert statuses == [204, 204, 204, 429]
    limited = client.get("/api/v1/items/next", headers=rater)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # The limit is per token: another rater is unaffected.
    assert client.get("/api/v1/items/next", headers=make_rater("other")).status_code == 204


@pytest.mark.parametrize("content", [
    b"{not json",
    b'{"item_id": 1, "verdict": "tie"',
    b"\xff\xfe\x00garbage",
    b'{"item_id": 1, "verdict": "\xc3\x28"}',
    b'{"item_id": ' + b"9" * 5000 + b', "verdict": "tie"}',
    b'{"item_id": 99999999999999999999999, "verdict": "tie"}',
    b'{"item_id": 1.5, "verdict": "tie"}',
    b'{"item_id": true, "verdict": "tie"}',
    b'{"item_id": 1, "verdict": "tie", "comment": "a\\u0000b"}',
    b'{"item_id": 1, "verdict": "tie", "comment": "\\ud800"}',
    b'{"item_id": 1, "scores": {"1": 99999999999999999999}}',
    b'{"item_id": 1, "scores": {"-5": 3}}',
    b'{"item_id": 1, "time_spent_ms": 99999999999999999999}',
    b"[]",
    b"null",
    b'"text"',
])
def test_junk_rating_bodies_are_422_with_field(client, rater, db, content):
    make_items(db, 1)
    client.get("/api/v1/items/next", headers=rater)
    response = client.post("/api/v1/ratings", content=content,
                           headers=rater | {"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] and response.json()["field"]


@pytest.mark.parametrize("text", ["a\\u0000b", "\\ud800", "   ", "x" * 20_001])
def test_unstorable_prompt_text_is_422_with_field(client, admin, text):
    body = '{"prompts": [{"text": "%s"}]}' % text
    response = client.post("/api/v1/prompts", content=body,
                           headers=admin | {"Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["field"] == "text"
    assert response.json()["errors"][0]["index"] == 0


def test_unstorable_item_text_is_422(client, admin):
    for item in [{"prompt": "p", "responses": [{"text": "a\x00"}]},
                 {"prompt": "p", "responses": [{"text": "a", "source": "s" * 129}]},
                 {"prompt_id": 2**31, "responses": [{"text": "a"}]},
                 {"prompt": "p", "responses": [{"text": "a"}], "overlap": 10**30}]:
        response = client.post("/api/v1/items", json={"items": [item]}, headers=admin)
        assert response.status_code == 422, (item, response.text)
        assert response.json()["errors"][0]["index"] == 0


def test_bad_idempotency_key_is_422(client, rater, db):
    make_items(db, 1)
    shown = client.get("/api/v1/items/next", headers=rater).json()
    body = {"item_id": shown["item_id"], "verdict": "tie"}
    response = client.post("/api/v1/ratings", json=body, headers=rater | {"Idempotency-Key": "k" * 129})
    assert response.status_code == 422 and response.json()["field"] == "Idempotency-Key"


def test_settings_are_restored():
    assert get_settings().max_body_bytes == 2_000_000
    assert get_settings().api_rate_per_minute == 6000


def test_values_the_database_cannot_hold_are_422_not_500(client, admin):
    # A route that forgot to bound an id still answers the client, not with a 500.
    response = client.get("/api/v1/rounds/99999999999", headers=admin)
    assert response.status_code in (404, 422), response.text
