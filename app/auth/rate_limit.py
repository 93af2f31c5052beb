"""Login rate limiting: failed attempts per account name and per client IP.

In-process on purpose: it needs no shared store, and with several web replicas
each one still caps a guesser at the limit per replica.
"""

import threading
import time
from collections import deque

WINDOW_SECONDS = 60.0
# Bound the memory an attacker can make us spend by spraying names.
MAX_KEYS = 50_000


class LoginLimiter:
    """Sliding one-minute window of failures; blocked once a key reaches the limit."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and now - times[0] >= WINDOW_SECONDS:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, name: str, ip: str, limit: int) -> int:
        """Seconds until a new attempt is allowed; 0 when it is allowed now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in _keys(name, ip):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = max(wait, WINDOW_SECONDS - (now - times[-limit]))
        return int(wait) + 1 if wait else 0

    def record_failure(self, name: str, ip: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= MAX_KEYS:
                self._sweep(now)
            for key in _keys(name, ip):
                self._failures.setdefault(key, deque()).append(now)

    def _sweep(self, now: float) -> None:
        for key in list(self._failures):
            self._recent(key, now)
        # Still full of live keys: forget the oldest half rather than grow.
        if len(self._failures) >= MAX_KEYS:
            for key in list(self._failures)[: MAX_KEYS // 2]:
                del self._failures[key]

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()


def _keys(name: str, ip: str) -> tuple[str, str]:
    # Names differ only by case for a guesser's purposes.
    return f"name:{name.strip().lower()}", f"ip:{ip}"


login_limiter = LoginLimiter()
