"""The engine's pool after a PostgreSQL restart: stale connections are replaced before use."""

import pytest
from sqlalchemy import text

from app.db import make_engine
from tests.services import PostgresServer

BACKEND = text("SELECT pg_backend_pid()")


@pytest.fixture
def bounced_postgres():
    server = PostgresServer.start()
    yield server
    server.destroy()


def test_a_live_pooled_connection_is_reused(bounced_postgres):
    engine = make_engine(bounced_postgres.url)
    with engine.connect() as connection:
        first = connection.scalar(BACKEND)
    with engine.connect() as connection:
        assert connection.scalar(BACKEND) == first
    engine.dispose()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_after_a_restart_the_next_request_gets_a_fresh_connection(bounced_postgres, mode):
    engine = make_engine(bounced_postgres.url)
    with engine.connect() as one, engine.connect() as two:  # two pooled connections
        stale = {one.scalar(BACKEND), two.scalar(BACKEND)}
    bounced_postgres.stop_server(mode)
    bounced_postgres.start_server()
    # No error on either: each stale connection is noticed at checkout and replaced.
    with engine.connect() as one, engine.connect() as two:
        fresh = {one.scalar(BACKEND), two.scalar(BACKEND)}
    assert not fresh & stale
    engine.dispose()
