"""Hostile text: HTML and script, control characters, invalid UTF-8, NUL, huge sizes.

The API refuses what cannot be stored as text (invalid UTF-8, lone surrogates,
NUL) with a 422 and stores the rest exactly as sent; pages show it escaped, with
control characters made visible. Already covered elsewhere, not repeated here:
junk rating bodies (tests/api/test_errors.py), 413 for big bodies (same file),
escaping on the rating page and in a real browser (tests/pages), the schemathesis
fuzz run (tests/api/test_openapi_conformance.py).
"""

import pytest
from sqlalchemy import func, select

from app.models import Checkpoint, Item, Prompt, RoundStatus, TrainingRound
from app.settings import get_settings
from tests.factories import make_items

# Each is the JSON text of one string value, as raw bytes on the wire.
UNSTORABLE = {
    "invalid utf-8 byte": b'"ab\xffcd"',
    "overlong utf-8": b'"ab\xc0\xafcd"',
    "utf-8 encoded surrogate": b'"ab\xed\xa0\x80cd"',
    "escaped lone surrogate": b'"ab\\ud800cd"',
    "escaped NUL": b'"ab\\u0000cd"',
    "raw NUL": b'"ab\x00cd"',
    "raw control char": b'"ab\x01cd"',
}
BODIES = {
    "prompt text": (b'{"prompts": [{"text": %s}]}', "admin", "/api/v1/prompts"),
    "prompt tag": (b'{"prompts": [{"text": "ok", "tags": [%s]}]}', "admin", "/api/v1/prompts"),
    "item prompt": (b'{"items": [{"prompt": %s, "responses": [{"text": "a"}, {"text": "b"}]}]}',
                    "admin", "/api/v1/items"),
    "item response": (b'{"items": [{"prompt": "p", "responses": [{"text": %s}, {"text": "b"}]}]}',
                      "admin", "/api/v1/items"),
    "bulk comment": (b'{"ratings": [{"item_id": 1, "verdict": "tie", "comment": %s}]}',
                     "rater", "/api/v1/ratings/bulk"),
    "rating comment": (b'{"item_id": 1, "verdict": "tie", "comment": %s}', "rater", "/api/v1/ratings"),
}

HOSTILE = ("Hi\x1b[2J\x07 \u202egnp.exe <script>alert(1)</script>"
           "<img src=x onerror=alert(2)> \"quoted\" 'single' &amp; {{ 7*7 }}")


@pytest.mark.parametrize("value", UNSTORABLE.values(), ids=UNSTORABLE.keys())
@pytest.mark.parametrize("where", BODIES.keys())
def test_unstorable_text_is_a_422_and_stores_nothing(app_client, callers, db, where, value):
    template, role, path = BODIES[where]
    make_items(db, 1)
    response = app_client.post(path, content=template % value,
                               headers=callers[role].bearer() | {"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Prompt)) == 1  # make_items' own


@pytest.mark.parametrize("url", ["/api/v1/ratings?rater=%FF%FE", "/api/v1/ratings?rater=a%00b",
                                 "/api/v1/rounds/%00", "/api/v1/rounds/%FF", "/api/v1/ratings?item_id=%E2%80%AE1",
                                 "/admin/rounds/%00", "/rate?notice=%1B%5B2J%3Cscript%3E"])
def test_hostile_urls_are_refused_or_ignored_never_a_500(app_client, callers, url):
    admin = callers["admin"]
    headers = admin.bearer() if url.startswith("/api/") else admin.session()
    response = app_client.get(url, headers=headers)
    assert response.status_code < 500, response.text
    assert "<script>" not in response.text


def test_hostile_text_is_stored_exactly_and_shown_escaped(app_client, callers, db):
    admin, rater = callers["admin"], callers["rater"]
    created = app_client.post("/api/v1/items", headers=admin.bearer(), json={"items": [{
        "prompt": HOSTILE, "responses": [{"text": "left \x08\x7f\x85 " + HOSTILE}, {"text": "right"}]}]})
    assert created.status_code == 201, created.text
    assert db.scalar(select(Prompt.text)) == HOSTILE  # stored exactly as sent

    leased = app_client.get("/api/v1/items/next", headers=rater.bearer()).json()
    assert leased["prompt"] == HOSTILE  # API clients get the text itself, JSON-escaped
    assert any(r["text"].startswith("left \x08\x7f\x85 ") for r in leased["responses"])

    page = app_client.get("/rate", headers=rater.session()).text
    for raw in ("\x1b", "\x07", "\u202e", "\x08", "\x7f", "\x85", "<script>alert", "<img src=x"):
        assert raw not in page, repr(raw)
    assert "Hi␛[2J␇ [U+202E]gnp.exe &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "left ␈␡[U+0085] " in page
    assert "&amp;amp;" in page and "{{ 7*7 }}" in page  # shown literally, not evaluated


def test_the_largest_allowed_text_is_stored_and_one_more_character_is_refused(app_client, callers, db):
    admin, limit = callers["admin"], get_settings().max_text_chars
    big = ("<b>" + "x" * limit)[:limit]
    ok = app_client.post("/api/v1/items", headers=admin.bearer(), json={"items": [{
        "prompt": big, "responses": [{"text": big}, {"text": big}]}]})
    assert ok.status_code == 201, ok.text[:300]
    for field in ("prompt", "response"):
        item = {"prompt": big, "responses": [{"text": big}, {"text": "b"}]}
        if field == "prompt":
            item["prompt"] = big + "x"
        else:
            item["responses"][0]["text"] = big + "x"
        refused = app_client.post("/api/v1/items", headers=admin.bearer(), json={"items": [item]})
        assert refused.status_code == 422, (field, refused.text[:300])
    assert db.scalar(select(func.count()).select_from(Item)) == 1
    page = app_client.get("/rate", headers=callers["rater"].session())
    assert page.status_code == 200 and "&lt;b&gt;xxx" in page.text and "<b>xxx" not in page.text


def test_admin_pages_escape_text_written_by_workers(app_client, callers, db):
    """Checkpoint names and round errors and logs come from workers (and exception
    messages that may quote user text): escaped on every dashboard page."""
    checkpoint = Checkpoint(version=1, path="round-1", name="<img src=x onerror=alert(1)>\x1b",
                            parent_id=None, content_hash="", metrics={"<script>k": 1.0},
                            status="current")
    db.add(checkpoint)
    db.flush()
    round_ = TrainingRound(algorithm="dpo", config={}, status=RoundStatus.failed,
                           error="ValueError: <script>alert(1)</script>\u202e",
                           log="step 1 <iframe src=//evil.example>\x07", base_checkpoint_id=checkpoint.id)
    db.add(round_)
    db.commit()
    admin = callers["admin"]
    for url in ("/admin", "/admin/checkpoints", f"/admin/rounds/{round_.id}"):
        page = app_client.get(url, headers=admin.session())
        assert page.status_code == 200, (url, page.status_code)
        for raw in ("<img src=x", "<script>alert", "<script>k", "<iframe", "\x1b", "\x07", "\u202e"):
            assert raw not in page.text, (url, raw)
    round_page = app_client.get(f"/admin/rounds/{round_.id}", headers=admin.session()).text
    assert "ValueError: &lt;script&gt;alert(1)&lt;/script&gt;[U+202E]" in round_page
    assert "&lt;img src=x onerror=alert(1)&gt;␛" in app_client.get(
        "/admin/checkpoints", headers=admin.session()).text
