"""Redis (the broker) goes away while raters rate: rating never needs it; launching a
round says plainly that the queue is unavailable (503, nothing half-created); when
Redis is back, launching works again without restarting the web server."""

import time

import httpx
import pytest
import redis
from sqlalchemy import func, select

from app.auth.session_cookie import COOKIE_NAME, encode_session
from app.checkpoints.service import add_checkpoint
from app.models import CheckpointStatus, TrainingRound
from app.users.service import create_token
from tests.factories import make_user
from tests.reliability.conftest import seed_raters
from tests.reliability.harness import Tally, integrity_problems, run_raters, stop_raters, wait_for
from tests.services import RedisServer

pytestmark = pytest.mark.slow


@pytest.fixture
def private_redis():
    server = RedisServer.start()
    yield server
    server.destroy()


def rounds_in(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(TrainingRound))


def test_raters_keep_rating_while_redis_is_down(db, app_env, private_redis, web_servers):
    tokens = seed_raters(db, raters=6, items=300, overlap=2)
    admin = make_user(db, "admin", admin=True)
    admin_token, (cookie, session) = create_token(db, admin), encode_session(admin.id)
    add_checkpoint(db, path="base", name="base", parent_id=None, status=CheckpointStatus.current)
    db.commit()
    # These raters answer with ties; what is tested here is the broker, not the ratings' worth.
    server = web_servers("server.log", TUNELOOP_BROKER_URL=private_redis.url, TUNELOOP_MIN_ROUND_COMPARISONS="0")
    api = httpx.Client(base_url=f"{server.url}/api/v1", timeout=30,
                       headers={"Authorization": f"Bearer {admin_token}"})
    tally = Tally()
    raters, stop = run_raters(server.url, tokens, tally)
    try:
        wait_for(lambda: len(tally.acks) >= 20, 60, "20 ratings with Redis up")
        private_redis.stop_server()

        started = time.monotonic()
        launched = api.post("/rounds", json={"algorithm": "dpo"})
        assert launched.status_code == 503, launched.text
        assert "task queue is unavailable" in launched.json()["detail"]
        assert time.monotonic() - started < 15
        page = httpx.post(f"{server.url}/admin/rounds", timeout=30,
                          data={"algorithm": "dpo", "csrf_token": session.csrf_token},
                          headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
        assert page.status_code == 503 and "task queue is unavailable" in page.text
        assert "Traceback" not in page.text
        assert rounds_in(db) == 0  # refused before anything was stored

        target = len(tally.acks) + 40
        wait_for(lambda: len(tally.acks) >= target, 60, "40 more ratings with Redis down")

        private_redis.start_server()
        relaunched = wait_for(lambda: (r := api.post("/rounds", json={"algorithm": "dpo"})).status_code
                              == 201 and r, 30, "a launch once Redis is back")
        round_id = relaunched.json()["id"]
        queued = redis.Redis.from_url(private_redis.url)
        wait_for(lambda: queued.llen("train") == 1, 10, "the round's message in the train queue")
        assert f"[{round_id}]".encode() in queued.lindex("train", 0)
        queued.close()
        assert rounds_in(db) == 1
    finally:
        stop_raters(raters, stop)
        api.close()

    print(f"\n{len(tally.acks)} acknowledged; {dict(tally.statuses)}")
    assert set(tally.statuses) <= {"lease 200", "lease 204", "submit 200", "submit 201"}, tally.bodies
    assert integrity_problems(app_env, tally.acks) == []
