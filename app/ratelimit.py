"""An in-process rate limiter: at most `limit` events per `window_seconds` per key.

Generic on purpose: API requests are keyed by token hash, logins by account or
address. It is the generic cell rate algorithm (GCRA): one timestamp per key,
so memory stays flat however many events arrive, and a burst of up to `limit`
is allowed after a quiet window. Each web process keeps its own counts, so
with N replicas the effective limit is up to N times higher.
"""

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit must be >= 1 and window_seconds > 0")
        self.limit = limit
        self.window = float(window_seconds)
        self._interval = self.window / limit  # one event "costs" this many seconds
        self._clock = clock
        self._max_keys = max_keys
        # key -> theoretical arrival time: when the key's budget is fully spent off.
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def check(self, key: str) -> float | None:
        """Count one event for `key`: None when allowed, else seconds until it would be."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + self._interval
            if new_tat - now > self.window:
                return new_tat - self.window - now
            self._tat[key] = new_tat
            if now >= self._next_prune or len(self._tat) > self._max_keys:
                self._prune(now)
            return None

    def reset(self, key: str | None = None) -> None:
        """Forget one key (after a successful login, say) or every key."""
        with self._lock:
            if key is None:
                self._tat.clear()
            else:
                self._tat.pop(key, None)

    def _prune(self, now: float) -> None:
        # A key whose arrival time has passed has its whole budget back: drop it.
        self._tat = {k: t for k, t in self._tat.items() if t > now}
        if len(self._tat) > self._max_keys:
            # Keys sprayed faster than they expire: forget the most rested half
            # (failing open for them) rather than grow without bound.
            keep = sorted(self._tat.items(), key=lambda kv: kv[1])[len(self._tat) // 2:]
            self._tat = dict(keep)
        self._next_prune = now + self.window
