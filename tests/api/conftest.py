"""An in-process client on the test database, and tokens for an admin and raters."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.users.service import create_token
from tests.factories import make_user


@pytest.fixture
def client(db) -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(db) -> dict[str, str]:
    user = make_user(db, "admin", admin=True)
    headers = bearer(create_token(db, user))
    db.commit()
    return headers


@pytest.fixture
def make_rater(db):
    def make(name: str = "rater") -> dict[str, str]:
        headers = bearer(create_token(db, make_user(db, name)))
        db.commit()
        return headers
    return make


@pytest.fixture
def rater(make_rater) -> dict[str, str]:
    return make_rater("rater")


