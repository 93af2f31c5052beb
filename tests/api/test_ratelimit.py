"""app.ratelimit.RateLimiter: `limit` events per window per key, then a wait."""

import threading

import pytest

from app.ratelimit import RateLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allows_a_burst_of_limit_then_says_how_long_to_wait():
    clock = Clock()
    limiter = RateLimiter(3, 60, clock=clock)
    assert [limiter.check("a") for _ in range(3)] == [None, None, None]
    wait = limiter.check("a")
    assert wait == pytest.approx(20.0)  # one event's share of the window
    clock.now += 19.9
    assert limiter.check("a") is not None
    clock.now += 0.2
    assert limiter.check("a") is None
    # Keys are independent.
    assert limiter.check("b") is None


def test_a_quiet_window_restores_the_whole_budget_and_forgets_the_key():
    clock = Clock()
    limiter = RateLimiter(2, 10, clock=clock)
    limiter.check("a"), limiter.check("a")
    clock.now += 10
    assert limiter.check("a") is None and limiter.check("a") is None
    clock.now += 100
    limiter.check("other")  # a check after the window prunes rested keys
    assert "a" not in limiter._tat


def test_memory_stays_bounded_when_keys_are_sprayed():
    limiter = RateLimiter(5, 60, clock=Clock(), max_keys=100)
    for i in range(1000):
        limiter.check(f"k{i}")
    assert len(limiter._tat) <= 101


def test_reset_forgets_a_key():
    limiter = RateLimiter(1, 60, clock=Clock())
    limiter.check("login:ann")
    assert limiter.check("login:ann") is not None
    limiter.reset("login:ann")
    assert limiter.check("login:ann") is None


def test_concurrent_checks_never_exceed_the_limit():
    limiter = RateLimiter(100, 3600)
    allowed = []

    def hammer():
        allowed.extend(limiter.check("k") is None for _ in range(50))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 100


def test_refuses_nonsense_limits():
    with pytest.raises(ValueError):
        RateLimiter(0, 60)
