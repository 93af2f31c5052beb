"""CSRF protection: every state-changing post carries a token a foreign page cannot read.

Signed-in users: the token lives inside the signed session cookie and is echoed
in a hidden form field or the X-CSRF-Token header. The login form has no session
yet, so it uses a double-submit cookie of its own.
"""

import hmac
import secrets

from fastapi import Request

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_CSRF_COOKIE = "tuneloop_login_csrf"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class CsrfRejected(Exception):
    """A post without the right CSRF token (HTTP 403)."""


def new_token() -> str:
    return secrets.token_urlsafe(24)


def tokens_match(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


async def posted_token(request: Request) -> str:
    """The token the client sent: the header (fetch) or the form field (plain post)."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        # Starlette caches the parsed form, so the route can still read it.
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def require_csrf(request: Request, expected: str | None) -> None:
    if not tokens_match(expected, await posted_token(request)):
        raise CsrfRejected("missing or wrong CSRF token")
