"""The rating page: GET shows the next item; rate.js posts answers as JSON and swaps
in the next item without a reload; a plain form post (no JS) redirects back."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app.auth.page_guard import CsrfChecked, PageRoute, PageViewer, Viewer
from app.deps import SessionDep
from app.errors import InvalidInput
from app.guidelines.service import current_guideline_html
from app.pages.rating_flow import NOTICES, RatingView, answer_item, next_view
from app.pages.rating_form import Submission
from app.pages.templating import templates

router = APIRouter(route_class=PageRoute)


def _panel_context(viewer: Viewer, view: RatingView, *, error: str = "",
                   error_field: str = "", answer: Submission | None = None) -> dict:
    return {"viewer": viewer, "view": view, "leased": view.leased, "progress": view.progress,
            "notice": view.notice, "error": error, "error_field": error_field, "answer": answer}


def _page(request: Request, db: SessionDep, viewer: Viewer, view: RatingView,
          status_code: int = 200, **extra) -> Response:
    context = _panel_context(viewer, view, **extra)
    context["guidelines_html"] = current_guideline_html(db)
    return templates.TemplateResponse(request, "rate/page.html", context, status_code=status_code)


@router.get("/rate")
def rate_page(request: Request, db: SessionDep, viewer: PageViewer, notice: str = "") -> Response:
    """The rating page with the rater's next item."""
    return _page(request, db, viewer, next_view(db, viewer.user.id, notice))


@router.post("/rate", dependencies=[CsrfChecked])
def rate_form_post(request: Request, db: SessionDep, viewer: PageViewer,
                   submission: Annotated[Submission, Form()]) -> Response:
    """No-JS fallback: store the answer, then POST-redirect-GET to the next item."""
    try:
        notice = answer_item(db, viewer.user.id, submission)
    except InvalidInput as error:
        return _page(request, db, viewer, next_view(db, viewer.user.id), status_code=422,
                     error=str(error), error_field=error.field or "", answer=submission)
    return RedirectResponse(f"/rate?notice={notice}", status_code=303)


@router.post("/rate/answer", dependencies=[CsrfChecked])
def rate_answer(request: Request, db: SessionDep, viewer: PageViewer,
                submission: Submission) -> JSONResponse:
    """Store the answer and return the next item's panel as HTML, in one round trip."""
    try:
        notice = answer_item(db, viewer.user.id, submission)
    except InvalidInput as error:
        return JSONResponse({"detail": str(error), "field": error.field}, status_code=422)
    view = next_view(db, viewer.user.id, notice)
    html = templates.get_template("rate/_panel.html").render(_panel_context(viewer, view))
    return JSONResponse({"notice": NOTICES[notice], "notice_key": notice, "html": html,
                         "item_id": view.leased.item_id if view.leased else None})


@router.get("/rate/panel")
def rate_panel(db: SessionDep, viewer: PageViewer) -> JSONResponse:
    """The panel alone, for rate.js to look for new items while the queue is empty."""
    view = next_view(db, viewer.user.id)
    html = templates.get_template("rate/_panel.html").render(_panel_context(viewer, view))
    return JSONResponse({"html": html, "item_id": view.leased.item_id if view.leased else None})
