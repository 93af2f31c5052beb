"""Simulated raters against the real server (uvicorn on PostgreSQL), through the REST API only."""

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace

import httpx
from sqlalchemy import func, select

from app.models import ApiToken, Item, Rating, User
from simulation.raters import SimulationConfig, run_simulation, simulate
from simulation.rules import RULES
from tests.factories import expire_leases
from tests.simulate.conftest import make_rule_items

CONFIG = SimulationConfig(rule=RULES["positive"], noise=0.0, delay=0.0, poll=0.1, idle_exit=1.5, seed=0)


def ratings_by_item(db) -> dict[int, list[Rating]]:
    db.expire_all()
    by_item: dict[int, list[Rating]] = {}
    for rating in db.scalars(select(Rating)):
        by_item.setdefault(rating.item_id, []).append(rating)
    return by_item


def test_three_raters_answer_every_item_exactly_its_overlap_by_the_rule(db, live_server):
    overlaps = [1, 2, 3] * 5
    winners = make_rule_items(db, overlaps)
    lines: list[str] = []

    stats = simulate(replace(CONFIG, url=live_server), raters=3, log=lines.append)

    assert [s.name for s in stats] == ["sim-1", "sim-2", "sim-3"] and not any(s.error for s in stats)
    assert sum(s.rated for s in stats) == sum(overlaps)
    by_item = ratings_by_item(db)
    for item in db.scalars(select(Item)):
        ratings = by_item[item.id]
        assert item.done and item.answers == item.overlap == len(ratings)
        assert len({r.user_id for r in ratings}) == item.overlap
        assert {r.preferred_sample_id for r in ratings} == {winners[item.id]}
    # The raters' accounts stay for the next run; the tokens minted for this one are revoked.
    assert db.scalar(select(func.count()).select_from(User).where(User.name.like("sim-%"))) == 3
    assert db.scalars(select(ApiToken.revoked_at)).all() and all(db.scalars(select(ApiToken.revoked_at)))
    assert not any("tl_" in line for line in lines)

    again = simulate(replace(CONFIG, url=live_server, idle_exit=0.2), raters=3, log=lines.append)
    assert sum(s.rated for s in again) == 0 and not any(s.error for s in again)


def test_raters_poll_through_204_until_items_arrive(db, live_server, rater_tokens):
    tokens = rater_tokens("ann", "bob")
    results = []
    config = replace(CONFIG, url=live_server, poll=0.2, idle_exit=3.0)
    thread = threading.Thread(target=lambda: results.extend(run_simulation(tokens, config)))
    thread.start()
    time.sleep(1.0)
    make_rule_items(db, [1] * 6)
    thread.join(60)

    assert not thread.is_alive()
    assert all(s.empty_polls >= 1 for s in results)
    assert sum(s.rated for s in results) == 6 and len(ratings_by_item(db)) == 6


class AnotherRaterAnswersFirst(httpx.BaseTransport):
    """Before the simulated rater's first answer arrives, its lease runs out and a rival answers the item."""

    def __init__(self, db, rival: httpx.Client):
        self.db, self.rival = db, rival
        self.inner = httpx.HTTPTransport()
        self.taken_item: int | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and self.taken_item is None:
            self.taken_item = json.loads(request.content)["item_id"]
            expire_leases(self.db, self.taken_item)
            leased = self.rival.get("/items/next").json()
            assert leased["item_id"] == self.taken_item
            answer = {"item_id": self.taken_item, "verdict": "tie"}
            assert self.rival.post("/ratings", json=answer).status_code == 201
        return self.inner.handle_request(request)


def test_a_409_for_an_expired_lease_moves_on_to_the_next_item(db, live_server, rater_tokens):
    make_rule_items(db, [1, 1])
    sim_token, rival_token = rater_tokens("sim", "rival")
    with httpx.Client(base_url=f"{live_server}/api/v1", headers={"Authorization": f"Bearer {rival_token}"},
                      timeout=30) as rival:
        transport = AnotherRaterAnswersFirst(db, rival)
        (stats,) = run_simulation([sim_token], replace(CONFIG, url=live_server), transport=transport)

    assert stats.conflicts == 1 and stats.rated == 1 and stats.error is None
    by_item = ratings_by_item(db)
    assert [r.verdict for r in by_item[transport.taken_item]] == ["tie"]  # only the rival's answer
    assert sum(len(ratings) for ratings in by_item.values()) == 2


def test_the_cli_rates_up_to_max_ratings_and_prints_no_token(db, live_server):
    make_rule_items(db, [1] * 5)
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "simulate", "--url", live_server, "--raters", "2", "--noise", "0",
         "--delay", "0", "--max-ratings", "3", "--idle-exit", "3", "--rule", "shorter"],
        env=dict(os.environ), capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert "3 ratings" in result.stderr and "tl_" not in result.stdout + result.stderr
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Rating)) == 3


def test_the_cli_refuses_an_unknown_rule():
    result = subprocess.run([sys.executable, "-m", "app.cli", "simulate", "--rule", "kindness"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and result.stderr.startswith("error: unknown rule")
