"""/api/v1: every REST route, gathered from the domain packages."""

from fastapi import APIRouter, Depends

from app.api.limits import limit_api_rate
from app.checkpoints.routes import router as checkpoints_router
from app.feedback.routes import router as feedback_router
from app.prompts.routes import router as prompts_router
from app.prompts.routes import sources_router
from app.rounds.routes import router as rounds_router
from app.users.routes import router as raters_router

# Every API route counts against its caller's rate limit (429 with Retry-After).
router = APIRouter(dependencies=[Depends(limit_api_rate)])
router.include_router(prompts_router)
router.include_router(sources_router)
router.include_router(feedback_router)
router.include_router(checkpoints_router)
router.include_router(rounds_router)
router.include_router(raters_router)
