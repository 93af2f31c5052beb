"""CSRF: a post authenticated by the browser's cookie counts only with the session's token.

The pages' own posts (form field or X-CSRF-Token) are tested one by one in
tests/auth/test_access.py and tests/admin/test_access.py, the login form's
double-submit cookie in tests/auth/test_access.py. Here: every post route at
once, and the REST API when it is called with the cookie instead of a token.
"""

import pytest
from sqlalchemy import func, select

from app.models import Prompt, Rating
from tests.factories import make_items
from tests.security.test_route_access import ACCESS, ROUTES, concrete

COOKIE_POSTS = [r for r in ROUTES if r[0] != "GET" and r[1] != "/login"]  # every method that changes state


@pytest.mark.parametrize("method, path", COOKIE_POSTS, ids=[p for _, p in COOKIE_POSTS])
@pytest.mark.parametrize("token", [None, "", "forged-token", "other-session"])
def test_no_cookie_post_counts_without_the_sessions_token(app_client, callers, real_ids,
                                                         method, path, token):
    admin = callers["admin"]
    if token == "other-session":
        token = callers["rater"].csrf  # a real token, but another session's
    headers = admin.session() | ({"X-CSRF-Token": token} if token is not None else {})
    url = concrete(path, real_ids)
    if path.startswith("/api/"):
        response = app_client.request(method, url, headers=headers, json={})
    else:
        response = app_client.post(url, headers=headers,
                                   data={"csrf_token": token} if token is not None else {})
    assert response.status_code == 403, (path, response.status_code, response.text[:200])
    assert "csrf" in response.text.lower() or "another site" in response.text


def test_api_with_the_cookie_stores_nothing_without_the_token(app_client, callers, db):
    rater, admin = callers["rater"], callers["admin"]
    [item_id] = make_items(db, 1)
    assert app_client.get("/api/v1/items/next", headers=rater.session()).status_code == 200
    answer = {"item_id": item_id, "verdict": "tie"}
    # What a foreign page could send: the cookie rides along, the token cannot.
    for headers in (rater.session(), rater.session() | {"X-CSRF-Token": "guess"}):
        assert app_client.post("/api/v1/ratings", json=answer, headers=headers).status_code == 403
    # A text/plain form post, the classic way to smuggle JSON past a preflight.
    smuggled = app_client.post("/api/v1/ratings", content=b'{"item_id": %d, "verdict": "tie"}' % item_id,
                               headers=rater.session() | {"Content-Type": "text/plain"})
    assert smuggled.status_code == 403
    prompts = app_client.post("/api/v1/prompts", json={"prompts": [{"text": "planted"}]},
                              headers=admin.session())
    assert prompts.status_code == 403
    assert db.scalar(select(func.count()).select_from(Rating)) == 0
    assert db.scalar(select(func.count()).select_from(Prompt).where(Prompt.text == "planted")) == 0

    # Our own pages send the header: then the cookie is enough.
    stored = app_client.post("/api/v1/ratings", json=answer,
                             headers=rater.session() | {"X-CSRF-Token": rater.csrf})
    assert stored.status_code == 201, stored.text
    assert db.scalar(select(func.count()).select_from(Rating)) == 1


def test_cookie_reads_and_bearer_posts_need_no_csrf_token(app_client, callers, db):
    admin, rater = callers["admin"], callers["rater"]
    # The dashboard's scripts read the API with the cookie (static/admin.js).
    assert app_client.get("/api/v1/rounds", headers=admin.session()).status_code == 200
    # A bearer token is never sent by a browser on its own: no CSRF token needed.
    assert app_client.post("/api/v1/prompts", json={"prompts": [{"text": "ok"}]},
                           headers=admin.bearer()).status_code == 201
    [item_id] = make_items(db, 1)
    app_client.get("/api/v1/items/next", headers=rater.bearer())
    assert app_client.post("/api/v1/ratings", json={"item_id": item_id, "verdict": "tie"},
                           headers=rater.bearer()).status_code == 201


def test_every_post_route_is_in_the_walk():
    assert {r for r in ROUTES if r[0] in ("POST", "PUT", "PATCH", "DELETE")} - {("POST", "/login")} == set(COOKIE_POSTS)
    assert all(ACCESS[r] != "public" for r in COOKIE_POSTS)
