"""Who may see a page: anonymous visitors go to /login, raters get a 403 page on admin URLs.

FastAPI dependencies cannot return a response, so they raise and PageRoute turns
the exception into one. Any router of HTML pages uses it:
`APIRouter(route_class=PageRoute)`, with `PageViewer` or `PageAdmin` parameters
and `dependencies=[CsrfChecked]` on posts.
"""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute

from app.auth.csrf import CsrfRejected, require_csrf
from app.deps import BrowserSessionDep, SessionDep
from app.models import User
from app.pages.templating import templates


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at a page, and the CSRF token their forms carry."""

    user: User
    csrf_token: str


class LoginRequired(Exception):
    pass


class PageForbidden(Exception):
    pass


def get_viewer(db: SessionDep, browser: BrowserSessionDep) -> Viewer:
    user = db.get(User, browser.user_id) if browser else None
    if user is None or not user.is_active:
        raise LoginRequired()
    return Viewer(user=user, csrf_token=browser.csrf_token)


PageViewer = Annotated[Viewer, Depends(get_viewer)]


def get_admin_viewer(viewer: PageViewer) -> Viewer:
    if not viewer.user.is_admin:
        raise PageForbidden("This page is for admins only.")
    return viewer


PageAdmin = Annotated[Viewer, Depends(get_admin_viewer)]


async def check_csrf(request: Request, browser: BrowserSessionDep) -> None:
    # Without a session there is nothing to forge a request with: ask to sign in.
    if browser is None:
        raise LoginRequired()
    await require_csrf(request, browser.csrf_token)


CsrfChecked = Depends(check_csrf)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _login_url(request: Request) -> str:
    target = request.url.path if request.method == "GET" else "/rate"
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return "/login?next=" + quote(target, safe="")


def page_error_response(request: Request, error: Exception) -> Response:
    if isinstance(error, LoginRequired):
        if _wants_json(request):
            return JSONResponse({"detail": "not signed in", "login": _login_url(request)}, 401)
        return RedirectResponse(_login_url(request), status_code=303)
    message = (
        "This form has expired or came from another site. Reload the page and try again."
        if isinstance(error, CsrfRejected) else str(error)
    )
    if _wants_json(request):
        return JSONResponse({"detail": message}, 403)
    return templates.TemplateResponse(request, "errors/403.html", {"message": message},
                                      status_code=403)


class PageRoute(APIRoute):
    """An APIRoute whose access errors become a redirect or a friendly 403 page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (LoginRequired, PageForbidden, CsrfRejected) as error:
                return page_error_response(request, error)

        return guarded
