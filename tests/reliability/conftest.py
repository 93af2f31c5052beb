"""Fault-test fixtures: raters with API tokens on a database of items, and servers to kill."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.users.service import create_token
from tests.factories import make_items, make_user
from tests.reliability.harness import WebServer
from tests.services import PostgresServer, _pg_bin


def seed_raters(db, raters: int, items: int, overlap: int = 2) -> dict[str, str]:
    """`raters` users with API tokens, and `items` comparison items each needing `overlap` answers."""
    tokens = {f"rater-{n}": create_token(db, make_user(db, f"rater-{n}")) for n in range(raters)}
    db.commit()
    make_items(db, items, overlap=overlap)
    return tokens


@pytest.fixture
def web_servers(tmp_path) -> Iterator:
    """Start `tuneloop serve` processes (environment: the current one plus overrides);
    every one is killed at the end."""
    started: list[WebServer] = []

    def start(log_name: str = "server.log", port: int | None = None, workers: int = 1,
              **env: str) -> WebServer:
        server = WebServer(env=dict(os.environ) | env, log_path=Path(tmp_path) / log_name,
                           workers=workers)
        if port:
            server.port = port
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.kill()


class DurablePostgres(PostgresServer):
    """A private cluster whose acknowledged commits survive a crash (synchronous_commit on):
    the shared test cluster trades that away for speed, which a test of "no acknowledged
    rating is lost" across an immediate (crash) restart cannot."""

    def start_server(self) -> None:
        options = (f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=on -c max_connections=300")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data_dir / "data"), "-o", options,
                  "-l", str(self.data_dir / "log"), "-w", "start")


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, migrated: bounce it without disturbing other tests."""
    from app.migrate import upgrade

    server = DurablePostgres.start()
    try:
        upgrade(server.url)
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_session(private_postgres):
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    engine = create_engine(private_postgres.url)
    session = Session(engine, expire_on_commit=False)
    yield session
    session.close()
    engine.dispose()
