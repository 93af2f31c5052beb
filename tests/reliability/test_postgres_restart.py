"""PostgreSQL restarts under load: once cleanly (pg_ctl stop -m fast, as an operator
or a failover would) and once by crash (-m immediate), each with a two-second outage.

The web server is left alone: it must notice its stale pooled connections by itself
(app.db polls each one's socket at checkout; tests/test_db.py checks that no request
fails once the database is back), answer clean 503s with Retry-After while the
database is away (never a 500), and lose no acknowledged rating.
"""

import time

import pytest

from tests.reliability.conftest import seed_raters
from tests.reliability.harness import Tally, integrity_problems, run_raters, stop_raters, wait_for

pytestmark = pytest.mark.slow


def test_postgres_restarts_during_load(private_postgres, private_session, web_servers):
    tokens = seed_raters(private_session, raters=8, items=400, overlap=2)
    server = web_servers("server.log", TUNELOOP_DATABASE_URL=private_postgres.url)
    tally = Tally()
    raters, stop = run_raters(server.url, tokens, tally)
    try:
        for mode in ("fast", "immediate"):
            target = len(tally.acks) + 40
            wait_for(lambda: len(tally.acks) >= target, 60, f"40 more ratings before the {mode} stop")
            private_postgres.stop_server(mode)
            time.sleep(2.0)
            private_postgres.start_server()
        target = len(tally.acks) + 40
        wait_for(lambda: len(tally.acks) >= target, 60, "40 ratings after the database came back")
    finally:
        stop_raters(raters, stop)

    print(f"\n{len(tally.acks)} acknowledged; {dict(tally.statuses)}")
    assert tally.count("submit 503") + tally.count("lease 503") > 0, "the outage went unnoticed"
    unclean = {s: n for s, n in tally.statuses.items() if s.split()[-1] not in
               ("200", "201", "204", "503")}
    assert not unclean, (unclean, tally.bodies)
    for what, (body, headers) in tally.bodies.items():
        if what.endswith("503"):
            assert "database unavailable" in body and headers.get("retry-after") == "1"
    assert "submit abandoned" not in tally.statuses
    assert "Traceback" not in server.log(), server.log()[-3000:]
    # Operators can tell why: each 503 is logged with the driver's error class, not the request's data.
    if any(what.endswith("503") for what in tally.bodies):
        assert "answered 503: " in server.log(), server.log()[-3000:]
    assert integrity_problems(private_postgres.url, tally.acks) == []
