"""Secrets at rest and in logs: argon2 password hashes, API tokens stored as hashes and
revocable, and nothing secret in the server's output.

Login rate limiting and the session cookie's flags are tested in
tests/auth/test_login.py; the cookie's Secure flag behind a TLS proxy in
tests/security/test_transport.py.
"""

import hashlib
import os
import re
import secrets

import httpx
import pytest
from sqlalchemy import text

from app.auth.session_cookie import COOKIE_NAME
from app.users.service import create_token, revoke_token
from tests.factories import make_items, make_user
from tests.reliability.harness import WebServer

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_passwords_are_stored_as_argon2id_hashes(db):
    password = "plain-" + secrets.token_hex(8)
    make_user(db, "hashed", password=password)
    make_user(db, "hashed-too", password=password)
    db.commit()
    hashes = db.execute(text('SELECT password_hash FROM "user" ORDER BY name')).scalars().all()
    assert all(h.startswith("$argon2id$") for h in hashes), hashes
    assert hashes[0] != hashes[1]  # salted
    assert not any(password in h for h in hashes)


def test_tokens_are_stored_as_hashes_and_a_revoked_token_gets_401(app_client, db):
    user = make_user(db, "tok")
    first, second = create_token(db, user, "laptop"), create_token(db, user, "ci")
    db.commit()
    rows = db.execute(text("SELECT token_hash, prefix FROM api_token ORDER BY id")).all()
    assert [r.token_hash for r in rows] == [hashlib.sha256(t.encode()).hexdigest() for t in (first, second)]
    for token in (first, second):
        assert not any(token in value for row in rows for value in row)
    make_items(db, 1)

    def status(token: str) -> int:
        return app_client.get("/api/v1/items/next", headers={"Authorization": f"Bearer {token}"}).status_code

    assert status(first) == 200 and status(second) == 200
    assert revoke_token(db, first) == 1
    db.commit()
    assert status(first) == 401 and status(second) == 200  # only the revoked one
    assert revoke_token(db, second[:10]) == 1  # by the prefix shown in listings
    db.commit()
    assert status(second) == 401
    response = app_client.get("/api/v1/items/next", headers={"Authorization": f"Bearer {second}"})
    assert response.json()["detail"] == "invalid or revoked API token"


@pytest.fixture
def logged_server(app_env, tmp_path):
    secret_key = "server-secret-" + secrets.token_hex(16)
    server = WebServer(env=dict(os.environ) | {"TUNELOOP_SECRET_KEY": secret_key},
                       log_path=tmp_path / "server.log").start()
    yield server, secret_key
    server.kill()


def test_no_secret_appears_in_the_server_output(db, logged_server):
    server, secret_key = logged_server
    password, wrong = "pw-" + secrets.token_hex(12), "wrong-" + secrets.token_hex(12)
    user = make_user(db, "logged", password=password)
    token, stranger = create_token(db, user), "tl_" + secrets.token_urlsafe(32)
    db.commit()
    make_items(db, 2)
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        csrf = CSRF_INPUT.search(browser.get("/login").text).group(1)
        for attempt in (wrong, password):
            browser.post("/login", data={"name": "logged", "password": attempt, "csrf_token": csrf})
        cookie = browser.cookies[COOKIE_NAME]
        page = browser.get("/rate")
        assert page.status_code == 200
        session_csrf = CSRF_INPUT.search(page.text).group(1)
        # A cookie post without its token, a form with a bad field.
        browser.post("/api/v1/ratings", json={"item_id": 1, "verdict": "tie"})
        browser.post("/rate", data={"csrf_token": session_csrf, "item_id": "x"})
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as api:
        assert api.get("/items/next", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        api.post("/ratings", content=b"{broken", headers={"Authorization": f"Bearer {token}"})
        assert api.get("/items/next", headers={"Authorization": f"Bearer {stranger}"}).status_code == 401

    log = server.log()
    assert "POST /login" in log and "GET /api/v1/items/next" in log  # the capture works
    for name, value in {"password": password, "wrong password": wrong, "token": token,
                        "unknown token": stranger, "secret key": secret_key, "session cookie": cookie,
                        "cookie signature": cookie.rsplit(".", 1)[1]}.items():
        assert value not in log, f"the {name} is in the server's output"
