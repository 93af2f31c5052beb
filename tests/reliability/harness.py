"""Tools for the fault tests (and bench/load.py): a web server process to kill, raters
that keep rating through a fault, and the integrity check read back from the database.

A rater leases (GET /items/next), then submits (POST /ratings) under an
Idempotency-Key made from its name and the item. A submit whose answer never
arrived (connection reset, 5xx) is retried with the same key until it gets an
answer, as a careful client would; so every answer the server acknowledged with
a 2xx must be in the database exactly once.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from tests.services import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class WebServer:
    """`tuneloop serve` in its own process group, logging to a file; killable."""

    env: dict
    log_path: Path
    workers: int | None = 1  # None: serve's default
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "WebServer":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
            + (["--workers", str(self.workers)] if self.workers else []),
            # Unbuffered: the log file holds every line even after a SIGKILL.
            env=self.env | {"PYTHONUNBUFFERED": "1"}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not up after {timeout}s: {self.log()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group (uvicorn's supervisor and its workers)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Ack:
    user: str
    item_id: int
    key: str
    rating_id: int
    status: int


@dataclass
class Tally:
    """What the raters saw, shared by their threads."""

    acks: list[Ack] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)  # "lease 200", "submit 503", "submit ConnectError"...
    bodies: dict = field(default_factory=dict)  # one example body per unexpected status
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, what: str, response: httpx.Response | None = None) -> None:
        with self.lock:
            self.statuses[what] += 1
            if response is not None and response.status_code >= 300 and what not in self.bodies:
                self.bodies[what] = (response.text[:300], dict(response.headers))

    def acked(self, ack: Ack) -> None:
        with self.lock:
            self.acks.append(ack)

    def count(self, prefix: str) -> int:
        return sum(n for what, n in self.statuses.items() if what.startswith(prefix))


class Rater(threading.Thread):
    """Leases and answers until told to stop; then finishes the answer in flight."""

    def __init__(self, name: str, token: str, url: str, tally: Tally, stop: threading.Event,
                 finish_within: float = 60.0):
        super().__init__(name=name, daemon=True)
        self.user, self.url, self.tally, self.stop = name, url, tally, stop
        self.headers = {"Authorization": f"Bearer {token}"}
        self.finish_within = finish_within

    def run(self) -> None:
        with httpx.Client(base_url=f"{self.url}/api/v1", headers=self.headers, timeout=10) as client:
            while not self.stop.is_set():
                item_id = self._lease(client)
                if item_id is not None:
                    self._submit(client, item_id)

    def _lease(self, client: httpx.Client) -> int | None:
        try:
            response = client.get("/items/next")
        except httpx.HTTPError as error:
            self.tally.saw(f"lease {error.__class__.__name__}")
            time.sleep(0.1)
            return None
        self.tally.saw(f"lease {response.status_code}", response)
        if response.status_code == 200:
            return response.json()["item_id"]
        time.sleep(0.05 if response.status_code == 204 else 0.1)
        return None

    def _submit(self, client: httpx.Client, item_id: int) -> None:
        key = f"{self.user}-item-{item_id}"
        body = {"item_id": item_id, "verdict": "tie"}
        deadline = None
        while True:
            if self.stop.is_set():
                deadline = deadline or time.monotonic() + self.finish_within
                if time.monotonic() > deadline:
                    self.tally.saw("submit abandoned")
                    return
            try:
                response = client.post("/ratings", json=body, headers={"Idempotency-Key": key})
            except httpx.HTTPError as error:
                self.tally.saw(f"submit {error.__class__.__name__}")
                time.sleep(0.1)
                continue  # the answer may or may not be stored: retry under the same key
            self.tally.saw(f"submit {response.status_code}", response)
            if response.status_code in (200, 201):
                self.tally.acked(Ack(self.user, item_id, key, response.json()["id"], response.status_code))
                return
            if response.status_code < 500:
                return  # refused (a lease lost to an expiry, say): move on
            time.sleep(0.1)


def run_raters(url: str, tokens: dict[str, str], tally: Tally) -> tuple[list[Rater], threading.Event]:
    stop = threading.Event()
    raters = [Rater(name, token, url, tally, stop) for name, token in tokens.items()]
    for rater in raters:
        rater.start()
    return raters, stop


def stop_raters(raters: list[Rater], stop: threading.Event, timeout: float = 90) -> None:
    stop.set()
    for rater in raters:
        rater.join(timeout)
    assert not any(r.is_alive() for r in raters), "a rater is still stuck after the stop"


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Reliability tests poll faster than the loop tests."""
    return wait_until(predicate, timeout, what, interval)


def integrity_problems(database_url: str, acks: list[Ack]) -> list[str]:
    """Acknowledged = stored; no duplicate answers; no item over its overlap."""
    engine = create_engine(database_url)
    problems: list[str] = []
    try:
        with engine.connect() as connection:
            stored = {row.id: row for row in connection.execute(text(
                'SELECT r.id, r.item_id, r.idempotency_key, u.name FROM rating r '
                'JOIN "user" u ON u.id = r.user_id'))}
            for ack in acks:
                row = stored.get(ack.rating_id)
                if row is None:
                    problems.append(f"acknowledged rating {ack.rating_id} ({ack.key}) is not stored")
                elif (row.item_id, row.idempotency_key, row.name) != (ack.item_id, ack.key, ack.user):
                    problems.append(f"rating {ack.rating_id} is not what was acknowledged: {ack} vs {row}")
            for row in connection.execute(text(
                    "SELECT user_id, item_id, count(*) AS n FROM rating GROUP BY user_id, item_id "
                    "HAVING count(*) > 1")):
                problems.append(f"user {row.user_id} answered item {row.item_id} {row.n} times")
            for row in connection.execute(text(
                    "SELECT i.id, i.overlap, i.answers, count(r.id) AS n FROM item i "
                    "LEFT JOIN rating r ON r.item_id = i.id GROUP BY i.id, i.overlap, i.answers "
                    "HAVING count(r.id) > i.overlap OR count(r.id) != i.answers")):
                problems.append(f"item {row.id}: {row.n} ratings, answers={row.answers}, "
                                f"overlap={row.overlap}")
    finally:
        engine.dispose()
    return problems
