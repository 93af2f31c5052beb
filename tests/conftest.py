"""Shared fixtures: real PostgreSQL and Redis, schema built by `alembic upgrade head`.

Every test that touches the database runs on PostgreSQL; tests that must also
hold on the embedded default ask for `sqlite_url` or use the `any_db` fixture.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.services import PostgresServer, RedisServer, S3Server

ARTIFACTS = Path(__file__).parent / "artifacts"


def reset_app_caches() -> None:
    """Forget cached settings and engines after the environment changed."""
    from app import db, settings

    if db.get_engine.cache_info().currsize:
        db.get_engine().dispose()
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()
    db.get_sessionmaker.cache_clear()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    if os.environ.get("TUNELOOP_TEST_DATABASE_URL"):
        yield None
        return
    server = PostgresServer.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def pg_url(postgres) -> str:
    return os.environ.get("TUNELOOP_TEST_DATABASE_URL") or postgres.url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    if os.environ.get("TUNELOOP_TEST_REDIS_URL"):
        yield None
        return
    server = RedisServer.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return os.environ.get("TUNELOOP_TEST_REDIS_URL") or redis_server.url


@pytest.fixture(scope="session")
def app_env(pg_url, redis_url, tmp_path_factory) -> Iterator[str]:
    """Point tuneloop (and any server it starts) at the test database, migrated."""
    from app.migrate import downgrade, upgrade

    var = tmp_path_factory.mktemp("var")
    saved = dict(os.environ)
    os.environ.update({
        "TUNELOOP_DATABASE_URL": pg_url,
        "TUNELOOP_VAR_DIR": str(var),
        "TUNELOOP_CHECKPOINT_DIR": str(var / "checkpoints"),
        "TUNELOOP_ENV": "development",
        "TUNELOOP_BROKER_URL": redis_url,
        # Tests kill workers on purpose; notice a dead one quickly.
        "TUNELOOP_ROUND_HEARTBEAT_TIMEOUT_SECONDS": "15",
        "HF_HUB_OFFLINE": "1",
    })
    reset_app_caches()
    downgrade(pg_url, "base")  # a reused server may hold an older schema
    upgrade(pg_url)
    yield pg_url
    os.environ.clear()
    os.environ.update(saved)
    reset_app_caches()


def truncate_all(session: Session) -> None:
    from app.models import Base

    tables = [t.name for t in Base.metadata.sorted_tables]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"TRUNCATE {', '.join(f'{chr(34)}{t}{chr(34)}' for t in tables)} "
                             "RESTART IDENTITY CASCADE"))
    else:
        for table in reversed(tables):
            session.execute(text(f'DELETE FROM "{table}"'))
    session.commit()


@pytest.fixture
def db(app_env) -> Iterator[Session]:
    """A session on an emptied PostgreSQL database."""
    from app.db import get_sessionmaker

    session = get_sessionmaker()()
    truncate_all(session)
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'tuneloop.db'}"


@pytest.fixture(params=["postgresql", "sqlite"])
def any_db(request, app_env, tmp_path) -> Iterator[Session]:
    """A migrated, empty database of each kind; settings point at it."""
    from app.db import get_sessionmaker
    from app.migrate import upgrade

    if request.param == "postgresql":
        yield request.getfixturevalue("db")
        return
    url = f"sqlite:///{tmp_path / 'tuneloop.db'}"
    upgrade(url)
    saved = os.environ["TUNELOOP_DATABASE_URL"]
    os.environ["TUNELOOP_DATABASE_URL"] = url
    reset_app_caches()
    session = get_sessionmaker()()
    yield session
    session.close()
    os.environ["TUNELOOP_DATABASE_URL"] = saved
    reset_app_caches()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_store(app_env, s3_server, monkeypatch) -> Iterator[str]:
    """TUNELOOP_CHECKPOINT_DIR on a new bucket of the test's S3 server, reached as any S3-compatible
    store is: through the standard AWS variables, AWS_ENDPOINT_URL included (processes the test
    starts inherit them). Returns the store's URL."""
    import uuid

    import fsspec

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "tuneloop-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "tuneloop-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"tuneloop-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("s3").mkdir(bucket)
    url = f"s3://{bucket}/checkpoints"
    monkeypatch.setenv("TUNELOOP_CHECKPOINT_DIR", url)
    reset_app_caches()
    yield url
    reset_app_caches()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def live_server(app_env, tmp_path_factory) -> Iterator[str]:
    """The real server (uvicorn in its own process) on the test database."""
    import subprocess
    import sys

    from tests.services import free_port, wait_for_port

    port = free_port()
    # A file, not a pipe: nobody reads a pipe, and once error logs fill it the
    # server blocks on its next write and stops answering.
    log = open(tmp_path_factory.mktemp("live-server") / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=log,
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Debian's headless Chromium, launched once for every browser test (Playwright's own
    browser download cannot run here)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not installed (scripts/ensure-system-packages installs it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
