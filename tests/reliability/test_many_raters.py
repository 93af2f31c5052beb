"""128 raters at once on one web process: every request is answered, none with a 5xx.

More requests than the database pool has connections must wait for one, not fail:
a request holding a pooled connection between its sync steps (FastAPI runs each
dependency and the endpoint as separate thread jobs) must never wait behind
threads that all wait for a connection (that deadlock ends, 30 s later, in a 500).
"""

import asyncio
import threading
import time

import pytest

from bench.load import Results, rater, seed
from tests.reliability.harness import integrity_problems

pytestmark = pytest.mark.slow

RATERS, SECONDS = 128, 40


def test_128_raters_on_one_process_get_no_errors(app_env, db, web_servers):
    tokens = seed(app_env, RATERS, items=3000, overlap=3)
    server = web_servers("server.log", workers=1, TUNELOOP_API_RATE_PER_MINUTE="100000000")
    results = Results()

    async def main():
        now = time.monotonic()
        await asyncio.gather(*(rater(name, token, server.port, now, now + SECONDS, results)
                               for name, token in tokens.items()))

    # A fresh thread: an earlier browser test in the same run may have left an
    # event loop set on the main thread, where asyncio.run() refuses to start.
    runner = threading.Thread(target=asyncio.run, args=(main(),))
    runner.start()
    runner.join()
    print(f"\n{len(results.acks)} acknowledged; errors {dict(results.errors)}")
    assert results.errors == {}, (dict(results.errors), server.log()[-3000:])
    assert len(results.acks) > RATERS
    assert "Traceback" not in server.log()
    assert integrity_problems(app_env, results.acks) == []


def test_a_pool_timeout_is_a_503_not_a_500(db, monkeypatch):
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from app import deps
    from app.main import create_app

    def pool_exhausted(*_args):
        raise PoolTimeout("QueuePool limit of size 10 overflow 20 reached")

    monkeypatch.setattr(deps, "caller_for_token", pool_exhausted)
    with TestClient(create_app()) as client:
        response = client.get("/api/v1/items/next", headers={"Authorization": "Bearer tl_x"})
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["detail"] == "database busy, retry shortly"
