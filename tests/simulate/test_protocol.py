"""The client protocol on a scripted server: throttling, retries with the same key, budgets, stop."""

import json
import threading
import time
from dataclasses import replace

import httpx

from simulation.raters import SimulationConfig, run_simulation
from simulation.rules import RULES

CONFIG = SimulationConfig(url="http://sim.test", rule=RULES["positive"], noise=0.0, delay=0.0, poll=0.05,
                          idle_exit=0.3, seed=0)


class ScriptedServer:
    """Hands out items one at a time; `faults` maps (method, attempt number) to a status or an exception."""

    def __init__(self, items: int, faults: dict | None = None):
        self.open = list(range(1, items + 1))
        self.faults = faults or {}
        self.calls = {"GET": 0, "POST": 0}
        self.keys: list[str] = []  # the Idempotency-Key of every POST attempt
        self.stored: dict[str, dict] = {}
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.calls[request.method] += 1
            fault = self.faults.get((request.method, self.calls[request.method]))
            if request.method == "POST":
                key = request.headers["idempotency-key"]
                self.keys.append(key)
                if key in self.stored:
                    return httpx.Response(200, json=self.stored[key])
                self.stored[key] = json.loads(request.content)
                if fault is not None:  # stored, but the answer never reached the client
                    return self._fault(fault, request)
                return httpx.Response(201, json=self.stored[key])
            if fault is not None:
                return self._fault(fault, request)
            if not self.open:
                return httpx.Response(204)
            item_id = self.open.pop(0)
            return httpx.Response(200, json={
                "item_id": item_id, "kind": "compare", "prompt": "Tell me about the cat.",
                "responses": [{"id": 2 * item_id, "text": "The cat is awful."},
                              {"id": 2 * item_id + 1, "text": "The cat is lovely."}]})

    @staticmethod
    def _fault(fault, request) -> httpx.Response:
        if isinstance(fault, Exception):
            raise fault
        status, headers = fault if isinstance(fault, tuple) else (fault, {})
        return httpx.Response(status, headers=headers, json={"detail": "scripted"})


def simulate(server: ScriptedServer, tokens=("t1",), **changes):
    config = replace(CONFIG, **changes)
    return run_simulation(list(tokens), config, transport=httpx.MockTransport(server))


def test_429_waits_for_retry_after_then_goes_on():
    server = ScriptedServer(2, {("GET", 1): (429, {"Retry-After": "1"})})
    started = time.monotonic()
    (stats,) = simulate(server)
    assert time.monotonic() - started >= 1.0
    assert stats.throttled == 1 and stats.rated == 2 and stats.error is None


def test_a_lost_response_is_retried_with_the_same_key_and_stored_once():
    server = ScriptedServer(3, {("POST", 1): 502, ("POST", 3): httpx.ConnectError("connection reset")})
    (stats,) = simulate(server)
    assert stats.rated == 3 and stats.retries == 2
    # Attempts 1-2 and 3-4 each carried one key: a retry replays, never adds.
    assert server.keys[0] == server.keys[1] and server.keys[2] == server.keys[3]
    assert len(set(server.keys)) == 3 and len(server.stored) == 3
    # The rule decided every answer (the lovely response has the odd id).
    assert all(body["preferred_response_id"] % 2 == 1 for body in server.stored.values())


def test_a_refused_token_stops_that_rater_with_a_reason():
    server = ScriptedServer(2, {("GET", 1): 401})
    (stats,) = simulate(server)
    assert stats.rated == 0 and "refused" in stats.error


def test_max_ratings_caps_all_raters_together():
    server = ScriptedServer(50)
    stats = simulate(server, tokens=("t1", "t2", "t3"), max_ratings=7)
    assert sum(s.rated for s in stats) == 7 == len(server.stored)


def test_duration_ends_a_run_with_nothing_to_rate():
    server = ScriptedServer(0)
    started = time.monotonic()
    (stats,) = simulate(server, idle_exit=None, duration=0.5)
    assert time.monotonic() - started < 3
    assert stats.empty_polls >= 2 and stats.rated == 0


def test_stop_event_ends_every_rater():
    server = ScriptedServer(0)
    stop = threading.Event()
    config = replace(CONFIG, idle_exit=None)
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    stats = run_simulation(["a", "b"], config, stop=stop, transport=httpx.MockTransport(server))
    assert [s.name for s in stats] == ["rater-1", "rater-2"]
    assert all(s.empty_polls for s in stats)

