"""Private PostgreSQL, Redis and S3 servers for the test run.

The tests use the real services, never stand-ins. When TUNELOOP_TEST_DATABASE_URL
or TUNELOOP_TEST_REDIS_URL are set, those servers are used as they are;
otherwise a throwaway cluster and a throwaway Redis are started on free
loopback ports and removed at the end of the run. The S3 server is moto's,
speaking the S3 protocol over HTTP as AWS or MinIO would.
"""

import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    """Poll until predicate() is truthy and return its value, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        raise RuntimeError(
            f"PostgreSQL's {name} not found: install it (apt-get install -y postgresql) "
            "or set TUNELOOP_TEST_DATABASE_URL"
        )
    return found[-1]


@dataclass
class PostgresServer:
    """A private cluster; restart() lets fault tests bounce it."""

    data_dir: Path
    port: int
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @classmethod
    def start(cls) -> "PostgresServer":
        # initdb refuses to run as root; the Debian package brings a postgres user.
        run_as = "postgres" if os.geteuid() == 0 else None
        data_dir = Path(tempfile.mkdtemp(prefix="tuneloop-pg-"))
        if run_as:
            user = pwd.getpwnam(run_as)
            os.chown(data_dir, user.pw_uid, user.pw_gid)
        server = cls(data_dir=data_dir, port=free_port(), run_as=run_as)
        server._run(_pg_bin("initdb"), "-D", str(data_dir / "data"), "-U", "postgres",
                    "-A", "trust", "-E", "UTF8", "--no-sync")
        server.start_server()
        return server

    def start_server(self) -> None:
        options = (f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=300")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data_dir / "data"), "-o", options,
                  "-l", str(self.data_dir / "log"), "-w", "start")

    def stop_server(self, mode: str = "fast") -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data_dir / "data"), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop_server("immediate")
        self.start_server()

    def destroy(self) -> None:
        try:
            self.stop_server("immediate")
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> "RedisServer":
        server = cls(port=free_port())
        server.start_server()
        return server

    def start_server(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError(
                "redis-server not found: install it (apt-get install -y redis-server) "
                "or set TUNELOOP_TEST_REDIS_URL"
            )
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop_server(self) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()
            self.process = None

    def destroy(self) -> None:
        self.stop_server()


@dataclass
class S3Server:
    port: int
    server: object = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls) -> "S3Server":
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
        server = cls(port=free_port())
        server.server = ThreadedMotoServer(ip_address="127.0.0.1", port=server.port, verbose=False)
        server.server.start()
        wait_for_port(server.port)
        return server

    def stop(self) -> None:
        self.server.stop()


def lock_waiters(engine, statement_like: str = "%") -> int:
    """Sessions on this database waiting for a lock (a row, a table or an advisory lock)
    while running a statement like `statement_like`: how tests see racers pile up."""
    from sqlalchemy import text

    with engine.connect() as probe:
        return probe.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE :statement"), {"statement": statement_like}).scalar()
