"""A TestClient on the real app and the test database, and a login helper."""

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def client(db) -> Iterator[TestClient]:
    from app.auth.rate_limit import login_limiter
    from app.main import create_app

    login_limiter.reset()
    with TestClient(create_app(), follow_redirects=False) as test_client:
        yield test_client
    login_limiter.reset()


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD, next_url: str = "/rate"):
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token,
                                       "next": next_url})
