"""Fault-test fixtures: raters with API tokens on a database of items, and servers to kill."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.users.service import create_token
from tests.factories import make_items, make_user
from tests.reliability.harness import WebServer


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
