"""Per-token request limits for /api/v1 (429 with Retry-After)."""

import math
from functools import lru_cache

from fastapi import HTTPException, Request, status

from app.auth.session_cookie import COOKIE_NAME
from app.ratelimit import RateLimiter
from app.settings import get_settings
from app.users.service import hash_token


@lru_cache
def _limiter(per_minute: int) -> RateLimiter:
    return RateLimiter(per_minute, 60)


def api_limiter() -> RateLimiter:
    return _limiter(get_settings().api_rate_per_minute)


def caller_key(request: Request) -> str:
    """Whom to count: the token's hash (never the token), else the browser session's,
    else the address (many raters may share one behind a NAT)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + hash_token(token.strip())
    if cookie := request.cookies.get(COOKIE_NAME):
        return "session:" + hash_token(cookie)
    return "addr:" + (request.client.host if request.client else "unknown")


async def limit_api_rate(request: Request) -> None:
    """Runs before authentication, so guessing tokens is limited as well. Async: it touches
    no database, and a thread hop would cost more than the check."""
    retry_after = api_limiter().check(caller_key(request))
    if retry_after is not None:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many requests; slow down",
                            headers={"Retry-After": str(max(1, math.ceil(retry_after)))})
