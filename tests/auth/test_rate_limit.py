"""The login limiter's window, on a fake clock."""

from app.auth.rate_limit import LoginLimiter


def test_failures_expire_after_a_minute_and_keys_are_separate():
    now = [1000.0]
    limiter = LoginLimiter(clock=lambda: now[0])
    for _ in range(3):
        limiter.record_failure("Rita", "10.0.0.1")
    assert limiter.retry_after("rita", "10.0.0.9", 3) > 0  # same name, any case, other IP
    assert limiter.retry_after("bob", "10.0.0.1", 3) > 0  # same IP, other name
    assert limiter.retry_after("bob", "10.0.0.9", 3) == 0
    now[0] += 30
    assert 29 <= limiter.retry_after("rita", "10.0.0.9", 3) <= 31
    now[0] += 31
    assert limiter.retry_after("rita", "10.0.0.1", 3) == 0
