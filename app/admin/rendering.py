"""Rendering dashboard pages: every page gets the viewer and its nav section."""

from fastapi import Request
from fastapi.responses import Response

from app.auth.page_guard import Viewer
from app.errors import NotFound
from app.pages.templating import templates


def render(request: Request, template: str, viewer: Viewer, section: str,
           status_code: int = 200, **context) -> Response:
    return templates.TemplateResponse(request, f"admin/{template}",
                                      {"viewer": viewer, "section": section, **context},
                                      status_code=status_code)


def not_found(request: Request, viewer: Viewer, error: NotFound) -> Response:
    """A page, not the API's JSON body, for a stale or mistyped dashboard link."""
    return render(request, "not_found.html", viewer, "", status_code=404, message=str(error))
