"""The admin dashboard's pages, gathered in one router (included by app.pages.router)."""

from fastapi import APIRouter

from app.admin import checkpoints, overview, raters, rounds
from app.auth.page_guard import PageRoute

router = APIRouter(route_class=PageRoute)
router.include_router(overview.router)
router.include_router(rounds.router)
router.include_router(checkpoints.router)
router.include_router(raters.router)
