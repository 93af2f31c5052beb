"""The web server is SIGKILLed while raters are answering, twice, and started again.

Every answer acknowledged with a 2xx is in the database; answers whose reply was
lost are retried with the same Idempotency-Key after the restart and stored once.
"""

import time

import httpx
import pytest

from tests.reliability.conftest import seed_raters
from tests.reliability.harness import Tally, integrity_problems, run_raters, stop_raters, wait_for

pytestmark = pytest.mark.slow


def test_kill_the_web_server_during_load(db, app_env, web_servers):
    tokens = seed_raters(db, raters=8, items=400, overlap=2)
    server = web_servers("server.log", workers=2)
    tally = Tally()
    raters, stop = run_raters(server.url, tokens, tally)
    try:
        for kill in range(2):
            target = len(tally.acks) + 40
            wait_for(lambda: len(tally.acks) >= target, 60, f"40 more acknowledged ratings (kill {kill})")
            server.kill()
            time.sleep(1.0)  # raters see refused connections meanwhile
            server.start()
        target = len(tally.acks) + 40
        wait_for(lambda: len(tally.acks) >= target, 60, "40 ratings after the last restart")
    finally:
        stop_raters(raters, stop)

    print(f"\n{len(tally.acks)} acknowledged; {dict(tally.statuses)}")
    assert tally.count("submit Connect") + tally.count("lease Connect") > 0, tally.statuses
    assert "submit abandoned" not in tally.statuses
    assert not [s for s in tally.statuses if s.endswith(" 500")], tally.bodies
    assert integrity_problems(app_env, tally.acks) == []

    # Every client retries every acknowledged answer once more: the first result comes
    # back (200, same id) and nothing new is stored.
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=10) as client:
        for ack in tally.acks:
            replay = client.post("/ratings", json={"item_id": ack.item_id, "verdict": "tie"},
                                 headers={"Authorization": f"Bearer {tokens[ack.user]}",
                                          "Idempotency-Key": ack.key})
            assert replay.status_code == 200 and replay.json()["id"] == ack.rating_id, replay.text
    from sqlalchemy import func, select

    from app.models import Rating

    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Rating)) == len(tally.acks)
    assert integrity_problems(app_env, tally.acks) == []
