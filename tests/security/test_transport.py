"""What every response carries and what the server refuses to read.

Security headers on pages, API answers, errors and static files; no inline script
or style on any page (the CSP forbids them); bodies over the limit are a 413 on
the real server, chunked ones included; the session cookie is Secure behind a
TLS-terminating proxy (X-Forwarded-Proto from a trusted address). Cookie flags
on plain http and with TUNELOOP_SECURE_COOKIES are in tests/auth/test_login.py,
413 through the in-process client in tests/api/test_errors.py.
"""

import os
import re
import socket

import httpx
import pytest

from app.auth.session_cookie import COOKIE_NAME
from app.models import Algorithm, RoundStatus, TrainingRound
from app.users.service import create_token
from tests.factories import make_items, make_user
from tests.reliability.harness import WebServer

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = ["/login", "/rate", "/guidelines", "/admin", "/admin/checkpoints", "/admin/raters",
         "/admin/guidelines", "/admin/rounds/{round_id}"]


def assert_security_headers(response: httpx.Response) -> None:
    csp = response.headers.get("content-security-policy", "")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives.get("script-src") == "'self'", csp
    assert directives.get("frame-ancestors") == "'none'", csp
    assert directives.get("object-src") == "'none'", csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("x-frame-options") == "DENY"


@pytest.fixture
def round_id(db) -> int:
    round_ = TrainingRound(algorithm=Algorithm.dpo, config={}, status=RoundStatus.queued)
    db.add(round_)
    db.commit()
    return round_.id


def test_security_headers_on_every_kind_of_response(app_client, callers, round_id, db):
    admin = callers["admin"]
    responses = [app_client.get(p.format(round_id=round_id), headers=admin.session()) for p in PAGES]
    responses += [
        app_client.get("/rate"),  # a redirect to /login
        app_client.get("/api/v1/items/next"),  # 401 JSON
        app_client.get("/api/v1/items/next", headers=admin.bearer()),  # 204
        app_client.get("/api/v1/rounds/999", headers=admin.bearer()),  # 404 JSON
        app_client.post("/api/v1/ratings", content=b"{", headers=admin.bearer()),  # 422
        app_client.post("/api/v1/prompts", content=b"x" * 3_000_000, headers=admin.bearer()),  # 413
        app_client.get("/static/rate.js"),
        app_client.get("/no/such/page"),
        app_client.get("/healthz"),
    ]
    assert responses[-4].status_code == 413
    for response in responses:
        assert_security_headers(response)


def test_no_page_has_inline_script_or_style(app_client, callers, round_id, db):
    make_items(db, 1)
    admin = callers["admin"]
    for path in PAGES:
        html = app_client.get(path.format(round_id=round_id), headers=admin.session()).text
        scripts = re.findall(r"<script\b[^>]*>", html, re.I)
        assert all(" src=" in tag for tag in scripts), (path, scripts)
        assert re.findall(r"<script\b[^>]*>\s*[^<\s]", html) == [], path  # nothing between the tags
        assert not re.search(r"\son[a-z]+\s*=", html, re.I), (path, "inline event handler")
        assert "javascript:" not in html.lower(), path
        assert not re.search(r"<style\b|\sstyle\s*=", html, re.I), (path, "inline style")


@pytest.fixture
def small_limit_server(app_env, tmp_path):
    server = WebServer(env=dict(os.environ) | {"TUNELOOP_MAX_BODY_BYTES": "1000"},
                       log_path=tmp_path / "server.log").start()
    yield server
    server.kill()


def raw_post(port: int, path: str, headers: dict[str, str], chunks: list[bytes]) -> str:
    """A POST written by hand: no Content-Length, Transfer-Encoding: chunked."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(head.encode())
        try:
            for chunk in chunks:
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading it all
        return connection.recv(65536).decode(errors="replace")


def test_the_real_server_refuses_big_bodies_declared_or_chunked(small_limit_server, db):
    admin = make_user(db, "admin", admin=True)
    token = create_token(db, admin)
    db.commit()
    json_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    chunks = [b'{"prompts": [{"text": "'] + [b"x" * 100] * 50 + [b'"}]}']
    answer = raw_post(small_limit_server.port, "/api/v1/prompts", json_headers, chunks)
    assert answer.startswith("HTTP/1.1 413"), answer[:300]
    assert "x-frame-options: deny" in answer.lower()

    form = raw_post(small_limit_server.port, "/login",
                    {"Content-Type": "application/x-www-form-urlencoded"},
                    [b"name=a&password="] + [b"p" * 100] * 50)
    assert form.startswith("HTTP/1.1 413"), form[:300]

    declared = httpx.post(f"{small_limit_server.url}/api/v1/prompts", headers=json_headers,
                          content=b'{"prompts": [{"text": "' + b"x" * 2000 + b'"}]}')
    assert declared.status_code == 413
    # Under the limit, the same request goes through.
    small = httpx.post(f"{small_limit_server.url}/api/v1/prompts", headers=json_headers,
                       json={"prompts": [{"text": "small"}]})
    assert small.status_code == 201, small.text


def test_session_cookie_is_secure_behind_a_tls_proxy(small_limit_server, db):
    make_user(db, "rita", password="correct horse battery")
    db.commit()
    for proxied, secure in ((True, True), (False, False)):
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"} if proxied else {}
        with httpx.Client(base_url=small_limit_server.url, headers=headers, follow_redirects=False,
                          timeout=30) as browser:
            form = browser.get("/login")
            login_cookie = form.headers["set-cookie"].lower()
            assert ("; secure" in login_cookie) is secure, login_cookie
            # An https cookie is not sent back over plain http: send it by hand.
            token = CSRF_INPUT.search(form.text).group(1)
            response = browser.post("/login", headers={"Cookie": f"tuneloop_login_csrf={token}"},
                                    data={"name": "rita", "password": "correct horse battery",
                                          "csrf_token": token})
            assert response.status_code == 303, response.text[:300]
            [session] = [c for c in response.headers.get_list("set-cookie") if c.startswith(COOKIE_NAME)]
            session = session.lower()
            assert "httponly" in session and "samesite=lax" in session
            assert ("; secure" in session) is secure, session
