"""/admin/raters: who rates how much, how fast, and how consistently with others."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.admin.rater_stats import rater_stats
from app.admin.rendering import render
from app.auth.page_guard import PageAdmin, PageRoute
from app.deps import SessionDep

router = APIRouter(route_class=PageRoute)


@router.get("/admin/raters")
def raters_page(request: Request, db: SessionDep, viewer: PageAdmin) -> Response:
    """Rater statistics."""
    return render(request, "raters.html", viewer, "raters", stats=rater_stats(db))
