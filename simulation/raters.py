"""Simulated raters: clients of the public REST API that answer by a hidden rule.

Each rater is a thread with its own API token. It leases an item
(GET /api/v1/items/next), waits `delay` seconds as a person would while
reading, and answers (POST /api/v1/ratings with an Idempotency-Key), preferring
the response its rule scores higher. A share `noise` of answers is flipped
(the other response wins; a tie becomes a random pick), like careless clicks.

The protocol is a well-behaved client's: 204 (nothing to rate) sleeps and
polls again, 409 (the lease expired and others answered) moves on, 429 and
503 wait for Retry-After, other 5xx and connection errors back off and retry
the same answer under the same idempotency key, so nothing is stored twice.

Pure Python on purpose: it imports simulation.rules and httpx, never torch, so it
runs beside the web server (`tuneloop simulate`, `tuneloop demo --simulate N`).
"""

import importlib
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from simulation.rules import RULES, Rule, prefer, satisfaction
from worker.training.degeneration import is_degenerate

USER_PREFIX = "sim-"
TOKEN_NAME = "simulate"
MAX_BACKOFF_SECONDS = 30.0
# Score items (one response, 1..7): what a rater gives a response that does or
# does not satisfy the rule.
SATISFIED_SCORE, UNSATISFIED_SCORE = 6, 2


class SimulationError(Exception):
    """A rater cannot go on (its token was refused, or the server rejected an answer's shape)."""


def load_rule(spec: str) -> Rule:
    """A built-in rule by name, or `module:attribute` naming a Rule or a callable.

    A callable takes (prompt, response) and returns a score, higher is better;
    a response "satisfies" it when the score is above 0 (True counts as 1).
    """
    if spec in RULES:
        return RULES[spec]
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"unknown rule {spec!r}: use one of {', '.join(RULES)} or module:function")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot load rule {spec!r}: {error}") from None
    if isinstance(target, Rule):
        return target
    if callable(target):
        return Rule(spec, getattr(target, "__doc__", None) or spec, lambda p, r: float(target(p, r)), 0.0)
    raise ValueError(f"rule {spec!r} is neither a Rule nor a callable")


def answer_item(rule: Rule, item: dict, noise: float, rng: random.Random, thumbs: bool = False) -> dict:
    """The POST /ratings body for a leased item, as a rater following `rule` answers it; with
    `thumbs`, one response gets a thumb up or down instead of a score."""
    prompt, responses = item["prompt"], item["responses"]
    flip = noise > 0 and rng.random() < noise
    if item["kind"] == "score":
        (response,) = responses
        satisfied = satisfaction(rule, prompt, response["text"]) != flip
        if thumbs:
            return {"item_id": item["item_id"], "thumb": "up" if satisfied else "down"}
        score = SATISFIED_SCORE if satisfied else UNSATISFIED_SCORE
        return {"item_id": item["item_id"], "scores": {str(response["id"]): score}}
    if len(responses) == 2:
        a, b = responses
        choice = prefer(rule, prompt, a["text"], b["text"])
        if flip:
            choice = {"a": "b", "b": "a"}.get(choice) or rng.choice(("a", "b"))
        preferred = None if choice == "tie" else (a if choice == "a" else b)
    else:
        # Fluent before degenerate, then by the rule (as prefer() does for two).
        scores = [(not is_degenerate(r["text"]), rule.score(prompt, r["text"])) for r in responses]
        best = [r for r, s in zip(responses, scores) if s == max(scores)]
        preferred = best[0] if len(best) == 1 else None
        if flip:
            preferred = rng.choice([r for r in responses if r is not preferred])
    if preferred is None:
        return {"item_id": item["item_id"], "verdict": "tie"}
    return {"item_id": item["item_id"], "verdict": "preferred", "preferred_response_id": preferred["id"]}


@dataclass(frozen=True)
class SimulationConfig:
    url: str = "http://127.0.0.1:8000"
    rule: Rule = RULES["positive"]
    noise: float = 0.1  # share of answers flipped
    delay: float = 1.0  # seconds a rater spends on each item before answering
    max_ratings: int | None = None  # answers stored by all raters together
    duration: float | None = None  # seconds
    idle_exit: float | None = None  # a rater stops after this many seconds with nothing to rate
    poll: float = 2.0  # seconds between polls while there is nothing to rate
    seed: int | None = None


@dataclass
class RaterStats:
    name: str
    rated: int = 0
    conflicts: int = 0  # 409: lease expired (others answered) or the item went away
    empty_polls: int = 0  # 204
    throttled: int = 0  # 429 / 503 with Retry-After
    retries: int = 0  # other 5xx and connection errors, retried
    error: str | None = None

    def line(self) -> str:
        text = (f"{self.name}: {self.rated} rated, {self.conflicts} conflicts, {self.empty_polls} empty polls, "
                f"{self.throttled} throttled, {self.retries} retries")
        return text + (f", stopped: {self.error}" if self.error else "")


class RatingBudget:
    """The shared cap on stored answers: taken before leasing, given back if nothing was stored."""

    def __init__(self, limit: int | None):
        self._left = limit
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left is None:
                return True
            if self._left <= 0:
                return False
            self._left -= 1
            return True

    def give_back(self) -> None:
        with self._lock:
            if self._left is not None:
                self._left += 1


@dataclass
class SimulatedRater:
    name: str
    client: httpx.Client
    config: SimulationConfig
    budget: RatingBudget
    stop: threading.Event
    rng: random.Random
    deadline: float | None = None  # time.monotonic() value
    stats: RaterStats = field(init=False)

    def __post_init__(self) -> None:
        self.stats = RaterStats(self.name)

    def run(self) -> RaterStats:
        try:
            self._rate_until_done()
        except SimulationError as error:
            self.stats.error = str(error)
        return self.stats

    def _done(self) -> bool:
        return self.stop.is_set() or (self.deadline is not None and time.monotonic() >= self.deadline)

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake at once on stop; never past the deadline."""
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline - time.monotonic()))
        self.stop.wait(seconds)

    def _rate_until_done(self) -> None:
        last_item = time.monotonic()
        while not self._done() and self.budget.take():
            stored = False
            try:
                leased = self._call("GET", "/items/next")
                if leased is None:
                    return
                if leased.status_code == 204:
                    self.stats.empty_polls += 1
                    if self.config.idle_exit is not None and time.monotonic() - last_item >= self.config.idle_exit:
                        return
                    self._wait(self.config.poll)
                    continue
                self._expect(leased, 200)
                last_item = time.monotonic()
                item = leased.json()
                body = answer_item(self.config.rule, item, self.config.noise, self.rng)
                self._wait(self.config.delay)
                body["time_spent_ms"] = int(self.config.delay * 1000)
                # One key per answer: a retry after a lost response replays, never duplicates.
                key = f"{self.name}-{uuid.uuid4().hex}"
                answered = self._call("POST", "/ratings", json=body, headers={"Idempotency-Key": key})
                if answered is None:
                    return
                if answered.status_code in (404, 409):
                    self.stats.conflicts += 1
                    continue
                self._expect(answered, 200, 201)
                stored = True
                self.stats.rated += 1
            finally:
                if not stored:
                    self.budget.give_back()

    def _expect(self, response: httpx.Response, *statuses: int) -> None:
        if response.status_code not in statuses:
            raise SimulationError(f"{response.request.method} {response.request.url.path} answered "
                                  f"{response.status_code}: {response.text[:200]}")

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response | None:
        """The response, after waiting out throttling and retrying server and network errors;
        None when told to stop first."""
        backoff = 0.5
        while not self._done():
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.TransportError:
                response = None
            if response is not None and (response.status_code == 429 or (
                    response.status_code == 503 and "retry-after" in response.headers)):
                self.stats.throttled += 1
                self._wait(_retry_after(response, backoff))
                continue
            if response is None or response.status_code >= 500:
                self.stats.retries += 1
                self._wait(backoff * (0.5 + self.rng.random()))
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if response.status_code in (401, 403):
                raise SimulationError(f"the server refused {self.name}'s token ({response.status_code})")
            return response
        return None


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", default)))
    except ValueError:  # an HTTP date: rare from this server; wait the default
        return default


def run_simulation(
    tokens: list[str],
    config: SimulationConfig,
    stop: threading.Event | None = None,
    transport: httpx.BaseTransport | None = None,
    names: list[str] | None = None,
) -> list[RaterStats]:
    """Run one rater per token until the budget, the duration or `stop` ends them all."""
    stop = stop or threading.Event()
    budget = RatingBudget(config.max_ratings)
    deadline = time.monotonic() + config.duration if config.duration is not None else None
    seeds = random.Random(config.seed)
    names = names or [f"rater-{i}" for i in range(1, len(tokens) + 1)]
    base_url = config.url.rstrip("/") + "/api/v1"
    clients = [httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                            timeout=30, transport=transport) for token in tokens]
    raters = [SimulatedRater(name, client, config, budget, stop, random.Random(seeds.random()), deadline)
              for name, client in zip(names, clients)]
    results: list[RaterStats] = []
    threads = [threading.Thread(target=lambda r=rater: results.append(r.run()), name=rater.name, daemon=True)
               for rater in raters]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        pass  # Ctrl-C is the ordinary way to end an open-ended run: stop, then report
    finally:
        stop.set()  # every rater stops after its current request
        for thread in threads:
            thread.join()
        for client in clients:
            client.close()
    return sorted(results, key=lambda s: names.index(s.name))


def mint_tokens(count: int, name_prefix: str = USER_PREFIX) -> tuple[list[str], list[str]]:
    """(user names, fresh API tokens) for raters sim-1..sim-N, created in the configured database if missing."""
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import User
    from app.users.service import create_token, create_user

    names = [f"{name_prefix}{i}" for i in range(1, count + 1)]
    tokens = []
    with session_scope() as db:
        for name in names:
            user = db.scalar(select(User).where(User.name == name)) or create_user(db, name)
            tokens.append(create_token(db, user, name=TOKEN_NAME))
    return names, tokens


def revoke_tokens(tokens: list[str]) -> None:
    from app.db import session_scope
    from app.users.service import revoke_token

    with session_scope() as db:
        for token in tokens:
            revoke_token(db, token)


def simulate(
    config: SimulationConfig,
    raters: int | None = None,
    tokens: list[str] | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[RaterStats]:
    """`tuneloop simulate`: given tokens, or users sim-1..N with tokens minted for this run
    (revoked at the end; never printed)."""
    minted: list[str] = []
    if tokens:
        if raters is not None and raters != len(tokens):
            raise ValueError(f"--raters {raters} does not match the {len(tokens)} --token given")
        names = [f"rater-{i}" for i in range(1, len(tokens) + 1)]
    else:
        names, minted = mint_tokens(raters or 1)
        tokens = minted
    log(f"{len(tokens)} simulated rater(s) ({', '.join(names)}) on {config.url}: rule {config.rule.name!r}, "
        f"noise {config.noise:.0%}, {config.delay:g}s per answer")
    started = time.monotonic()
    try:
        stats = run_simulation(tokens, config, names=names)
    finally:
        if minted:
            revoke_tokens(minted)
    total = sum(s.rated for s in stats)
    log(f"{total} ratings in {time.monotonic() - started:.0f}s")
    for line in stats:
        log("  " + line.line())
    return stats
