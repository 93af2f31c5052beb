"""Guideline pages: read them (/guidelines), edit them (/admin/guidelines, admins only)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from app.auth.page_guard import CsrfChecked, PageAdmin, PageRoute, PageViewer
from app.deps import SessionDep
from app.errors import InvalidInput
from app.guidelines.service import (
    DEFAULT_GUIDELINES,
    current_guideline,
    current_guideline_html,
    save_guideline,
)
from app.models import Guideline, User
from app.pages.display import render_guidelines
from app.pages.templating import templates

router = APIRouter(route_class=PageRoute)


@router.get("/guidelines")
def show_guidelines(request: Request, db: SessionDep, viewer: PageViewer) -> Response:
    """The current rating guidelines."""
    return templates.TemplateResponse(request, "guidelines/show.html", {
        "viewer": viewer, "guidelines_html": current_guideline_html(db)})


def _edit_page(request: Request, db: SessionDep, viewer, *, body: str | None = None,
               error: str = "", saved: bool = False, status_code: int = 200) -> Response:
    current = current_guideline(db)
    author = db.get(User, current.updated_by_id) if current and current.updated_by_id else None
    source = body if body is not None else (current.body if current else DEFAULT_GUIDELINES)
    return templates.TemplateResponse(request, "guidelines/edit.html", {
        # section: the admin layout's nav marks this page as current.
        "viewer": viewer, "section": "guidelines", "body": source,
        "preview": render_guidelines(source), "error": error,
        "saved": saved, "current": current, "author": author,
        "revisions": db.scalar(select(func.count()).select_from(Guideline)),
    }, status_code=status_code)


@router.get("/admin/guidelines")
def edit_guidelines(request: Request, db: SessionDep, viewer: PageAdmin,
                    saved: bool = False) -> Response:
    """The guideline editor."""
    return _edit_page(request, db, viewer, saved=saved)


@router.post("/admin/guidelines", dependencies=[CsrfChecked])
def update_guidelines(request: Request, db: SessionDep, viewer: PageAdmin,
                      body: Annotated[str, Form()] = "") -> Response:
    """Save a new revision of the guidelines."""
    try:
        save_guideline(db, body, viewer.user.id)
    except InvalidInput as error:
        return _edit_page(request, db, viewer, body=body, error=str(error), status_code=422)
    return RedirectResponse("/admin/guidelines?saved=true", status_code=303)
