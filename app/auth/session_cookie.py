"""The browser session: a signed cookie holding the user id and a CSRF token.

Signed with HMAC-SHA256 under TUNELOOP_SECRET_KEY; nothing about the session
is stored server-side, so any web replica can read it.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from app.settings import get_settings

COOKIE_NAME = "tuneloop_session"
MAX_AGE_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class BrowserSession:
    user_id: int
    csrf_token: str
    issued_at: int


def _signature(payload: bytes) -> str:
    key = get_settings().secret_key.encode()
    return base64.urlsafe_b64encode(hmac.new(key, payload, hashlib.sha256).digest()).decode().rstrip("=")


def encode_session(user_id: int) -> tuple[str, BrowserSession]:
    session = BrowserSession(user_id=user_id, csrf_token=secrets.token_urlsafe(24), issued_at=int(time.time()))
    payload = base64.urlsafe_b64encode(
        json.dumps([session.user_id, session.csrf_token, session.issued_at]).encode()
    )
    return f"{payload.decode()}.{_signature(payload)}", session


def decode_session(cookie: str | None) -> BrowserSession | None:
    if not cookie or "." not in cookie:
        return None
    payload, signature = cookie.rsplit(".", 1)
    if not hmac.compare_digest(signature, _signature(payload.encode())):
        return None
    try:
        user_id, csrf_token, issued_at = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(user_id, int) or time.time() - issued_at > MAX_AGE_SECONDS:
        return None
    return BrowserSession(user_id=user_id, csrf_token=str(csrf_token), issued_at=int(issued_at))
