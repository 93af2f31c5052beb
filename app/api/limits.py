"""Per-token request limits for /api/v1 (429 with Retry-After)."""

import hashlib
import math
from functools import lru_cache

from fastapi import HTTPException, Request, status

from app.ratelimit import RateLimiter
from app.settings import get_settings


@lru_cache
def _limiter(per_minute: int) -> RateLimiter:
    return RateLimiter(per_minute, 60)


def api_limiter() -> RateLimiter:
    return _limiter(get_settings().api_rate_per_minute)


def caller_key(request: Request) -> str:
    """The token's hash for API clients (never the token itself); the address otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + hashlib.sha256(token.strip().encode()).hexdigest()
    return "addr:" + (request.client.host if request.client else "unknown")


def limit_api_rate(request: Request) -> None:
    """Runs before authentication, so guessing tokens is limited as well."""
    retry_after = api_limiter().check(caller_key(request))
    if retry_after is not None:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many requests; slow down",
                            headers={"Retry-After": str(max(1, math.ceil(retry_after)))})
