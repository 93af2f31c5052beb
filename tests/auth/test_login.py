"""Logging in and out of the browser pages: cookies, wrong passwords, rate limits."""

import pytest
from fastapi.testclient import TestClient

from app.auth.session_cookie import COOKIE_NAME
from app.settings import get_settings
from tests.auth.web_client import PASSWORD, csrf_from, login
from tests.factories import make_user


@pytest.fixture
def rater(db):
    user = make_user(db, "rita", password=PASSWORD)
    db.commit()
    return user


def session_cookie_header(response) -> str:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE_NAME)]
    return header


def test_login_sets_a_locked_down_session_cookie_and_logout_clears_it(client, rater):
    response = login(client, "rita")
    assert response.status_code == 303 and response.headers["location"] == "/rate"
    header = session_cookie_header(response).lower()
    assert "httponly" in header and "samesite=lax" in header and "path=/" in header
    assert "secure" not in header  # plain http and secure_cookies off
    page = client.get("/rate")
    assert page.status_code == 200 and "rita" in page.text

    response = client.post("/logout", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert 'max-age=0' in session_cookie_header(response).lower()
    assert client.get("/rate").headers["location"].startswith("/login")


def test_cookie_is_secure_over_https_or_when_configured(db, rater, client, monkeypatch):
    from app.main import create_app

    with TestClient(create_app(), base_url="https://testserver", follow_redirects=False) as https:
        assert "secure" in session_cookie_header(login(https, "rita")).lower()
    monkeypatch.setenv("TUNELOOP_SECURE_COOKIES", "true")
    get_settings.cache_clear()
    try:
        page = client.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()
        # Over plain http the browser would not send a Secure cookie back; send it by hand.
        token = csrf_from(page.text)
        client.cookies.clear()
        response = client.post("/login", data={"name": "rita", "password": PASSWORD,
                                               "csrf_token": token},
                               headers={"Cookie": f"tuneloop_login_csrf={token}"})
        assert "secure" in session_cookie_header(response).lower()
    finally:
        monkeypatch.delenv("TUNELOOP_SECURE_COOKIES")
        get_settings.cache_clear()


@pytest.mark.parametrize("name, password", [("rita", "wrong password"), ("nobody", PASSWORD),
                                            ("RITA", PASSWORD)])
def test_wrong_name_or_password_is_refused_without_a_session(client, rater, name, password):
    response = login(client, name, password)
    assert response.status_code == 401
    assert "Wrong name or password." in response.text
    assert COOKIE_NAME not in client.cookies
    assert client.get("/rate").status_code == 303


def test_inactive_accounts_cannot_log_in(client, db, rater):
    rater.is_active = False
    db.commit()
    assert login(client, "rita").status_code == 401


def test_login_is_rate_limited_per_account_and_ip(client, rater):
    limit = get_settings().login_attempts_per_minute
    for _ in range(limit):
        assert login(client, "rita", "wrong password").status_code == 401
    blocked = login(client, "rita")  # even the right password: a guesser learns nothing
    assert blocked.status_code == 429
    assert "Too many login attempts" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    assert COOKIE_NAME not in client.cookies
    # The same client IP is blocked for other names too.
    assert login(client, "someone-else", "x").status_code == 429


def test_next_stays_on_this_site(client, rater):
    assert login(client, "rita", next_url="/guidelines").headers["location"] == "/guidelines"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        client.cookies.clear()
        assert login(client, "rita", next_url=evil).headers["location"] == "/rate"


def test_a_tampered_cookie_is_anonymous(client, rater):
    login(client, "rita")
    value = client.cookies[COOKIE_NAME]
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert client.get("/rate").status_code == 303


def test_signed_in_users_skip_the_login_form(client, rater):
    login(client, "rita")
    response = client.get("/login?next=/guidelines")
    assert response.status_code == 303 and response.headers["location"] == "/guidelines"
