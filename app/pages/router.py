"""Server-rendered pages for raters and admins, gathered in one router."""

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from app.admin.router import router as admin_router
from app.auth.page_guard import PageRoute, PageViewer
from app.auth.routes import router as auth_router
from app.guidelines.routes import router as guidelines_router
from app.pages.rate import router as rate_router

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/")
def home(viewer: PageViewer) -> RedirectResponse:
    """Signed-in people start at the rating page; others are sent to /login."""
    return RedirectResponse("/rate", status_code=303)


router.include_router(auth_router)
router.include_router(rate_router)
router.include_router(guidelines_router)
router.include_router(admin_router)
