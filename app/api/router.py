"""/api/v1: every REST route, gathered from the domain packages."""

from fastapi import APIRouter

from app.checkpoints.routes import router as checkpoints_router
from app.training.routes import router as rounds_router

router = APIRouter()
router.include_router(checkpoints_router)
router.include_router(rounds_router)
