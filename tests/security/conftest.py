"""Callers of every kind on the real app: anonymous, a rater and an admin, each with an
API token and a browser session cookie, plus a real checkpoint and round to point at."""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from app.auth.session_cookie import COOKIE_NAME, encode_session
from app.checkpoints.service import add_checkpoint
from app.models import Algorithm, RoundStatus, TrainingRound
from app.users.service import create_token
from tests.factories import make_items, make_user


@dataclass(frozen=True)
class Caller:
    role: str  # anonymous | rater | admin
    token: str | None = None
    cookie: str | None = None
    csrf: str | None = None

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def session(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE_NAME}={self.cookie}"} if self.cookie else {}


def caller_for(db, role: str) -> Caller:
    if role == "anonymous":
        return Caller(role)
    user = make_user(db, f"{role}-user", admin=role == "admin")
    token = create_token(db, user)
    cookie, session = encode_session(user.id)
    return Caller(role, token=token, cookie=cookie, csrf=session.csrf_token)


@pytest.fixture
def app_client(db) -> Iterator[TestClient]:
    from app.auth.rate_limit import login_limiter
    from app.main import create_app

    login_limiter.reset()
    with TestClient(create_app(), follow_redirects=False) as client:
        yield client
    login_limiter.reset()


@pytest.fixture
def callers(db) -> dict[str, Caller]:
    found = {role: caller_for(db, role) for role in ("anonymous", "rater", "admin")}
    db.commit()
    return found


@pytest.fixture
def real_ids(db) -> dict[str, int]:
    """Ids for path parameters: a ready (not current) checkpoint and a queued round.

    No checkpoint is current, so an admin launching a round gets a 422 and nothing
    reaches the broker."""
    checkpoint = add_checkpoint(db, path="round-1", name="round-1", parent_id=None)
    round_ = TrainingRound(algorithm=Algorithm.dpo, config={}, status=RoundStatus.queued)
    db.add(round_)
    [item_id] = make_items(db, 1)
    db.commit()
    return {"checkpoint_id": checkpoint.id, "round_id": round_.id, "item_id": item_id, "name": "faq"}
