"""Login and logout pages: a signed session cookie, CSRF on both posts, rate-limited."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.auth import cookies
from app.auth.csrf import LOGIN_CSRF_COOKIE, new_token, require_csrf
from app.auth.page_guard import CsrfChecked, PageRoute
from app.auth.rate_limit import login_limiter
from app.auth.service import authenticate, safe_next
from app.deps import BrowserSessionDep, SessionDep
from app.models import User
from app.pages.templating import templates
from app.settings import get_settings

router = APIRouter(route_class=PageRoute)


def _login_page(request: Request, *, next_url: str, name: str = "", error: str = "",
                status_code: int = 200, headers: dict | None = None) -> Response:
    # Reuse the form's token while it lives, so two open tabs both still work.
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    response = templates.TemplateResponse(
        request, "login.html",
        {"csrf_token": token, "next_url": next_url, "name": name, "error": error},
        status_code=status_code, headers=headers,
    )
    cookies.set_login_csrf_cookie(response, request, token)
    return response


@router.get("/login")
def login_form(request: Request, db: SessionDep, browser: BrowserSessionDep,
               next: str | None = None) -> Response:
    """The login form (signed-in users go straight on)."""
    user = db.get(User, browser.user_id) if browser else None
    if user is not None and user.is_active:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next_url=safe_next(next))


@router.post("/login")
async def login(request: Request, db: SessionDep, name: Annotated[str, Form(max_length=256)] = "",
                password: Annotated[str, Form(max_length=1024)] = "",
                next: Annotated[str, Form(max_length=2048)] = "") -> Response:
    """Check the name and password; set the session cookie."""
    await require_csrf(request, request.cookies.get(LOGIN_CSRF_COOKIE))
    next_url, ip = safe_next(next), request.client.host if request.client else "unknown"
    limit = get_settings().login_attempts_per_minute
    # Checked before the password: a blocked guesser must not learn a right guess.
    wait = login_limiter.retry_after(name, ip, limit)
    if wait:
        return _login_page(request, next_url=next_url, name=name, status_code=429,
                           headers={"Retry-After": str(wait)},
                           error=f"Too many login attempts. Wait {wait} seconds and try again.")
    user = authenticate(db, name, password)
    if user is None:
        login_limiter.record_failure(name, ip)
        return _login_page(request, next_url=next_url, name=name, status_code=401,
                           error="Wrong name or password.")
    response = RedirectResponse(next_url, status_code=303)
    cookies.set_session_cookie(response, request, user.id)
    cookies.clear_login_csrf_cookie(response, request)
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> Response:
    """Forget the session cookie."""
    response = RedirectResponse("/login", status_code=303)
    cookies.clear_session_cookie(response, request)
    return response
