"""Setting and clearing the browser's cookies with the flags they must carry."""

from fastapi import Request, Response

from app.auth.csrf import LOGIN_CSRF_COOKIE
from app.auth.session_cookie import COOKIE_NAME, MAX_AGE_SECONDS, BrowserSession, encode_session
from app.settings import get_settings


def wants_secure(request: Request) -> bool:
    """Secure when configured, or whenever the request itself came over https."""
    return get_settings().secure_cookies or request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, user_id: int) -> BrowserSession:
    # A fresh cookie (and CSRF token) at every login: no session fixation.
    value, session = encode_session(user_id)
    response.set_cookie(COOKIE_NAME, value, max_age=MAX_AGE_SECONDS, path="/",
                        httponly=True, samesite="lax", secure=wants_secure(request))
    return session


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax",
                           secure=wants_secure(request))


def set_login_csrf_cookie(response: Response, request: Request, token: str) -> None:
    # A browser-session cookie: it only has to outlive the login form.
    response.set_cookie(LOGIN_CSRF_COOKIE, token, path="/", httponly=True, samesite="lax",
                        secure=wants_secure(request))


def clear_login_csrf_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=wants_secure(request))
