"""/api/v1/checkpoints: lineage, metrics, human win rates; promotion and rollback."""

from fastapi import APIRouter

from app.api.types import IdText
from app.checkpoints.service import get_checkpoint, list_checkpoints, make_current
from app.checkpoints.win_rate import comparisons, fit_strengths, head_to_head
from app.deps import CurrentAdmin, SessionDep
from app.models import Checkpoint
from app.training.schemas import CheckpointOut

router = APIRouter(prefix="/checkpoints", tags=["checkpoints"])
ADMIN_ERRORS = {401: {"description": "no or bad token"}, 403: {"description": "admins only"}}


def checkpoint_views(checkpoints: list[Checkpoint], games: list) -> list[CheckpointOut]:
    if not checkpoints:
        return []
    strengths = fit_strengths(games, anchor=min(c.id for c in checkpoints))
    views = []
    for checkpoint in checkpoints:
        view = CheckpointOut.model_validate(checkpoint)
        if checkpoint.parent_id is not None:
            view.win_rate = head_to_head(games, checkpoint.id, checkpoint.parent_id).rate
        strength = strengths.get(checkpoint.id)
        if strength is not None:
            view.strength, view.strength_interval = strength.theta, (strength.low, strength.high)
        views.append(view)
    return views


@router.get("", response_model=list[CheckpointOut], responses=ADMIN_ERRORS)
def get_checkpoints(db: SessionDep, _: CurrentAdmin) -> list[CheckpointOut]:
    """Every checkpoint, newest first, with lineage, metrics and human win rate."""
    return checkpoint_views(list_checkpoints(db), comparisons(db))


@router.post("/{checkpoint_id}/promote", response_model=CheckpointOut,
             responses=ADMIN_ERRORS | {404: {"description": "no such checkpoint"},
                                       409: {"description": "not ready"}})
def promote_checkpoint(checkpoint_id: IdText, db: SessionDep, _: CurrentAdmin) -> CheckpointOut:
    """Make a ready checkpoint current (promote, or roll back to an older one)."""
    checkpoint = get_checkpoint(db, checkpoint_id)
    make_current(db, checkpoint)
    return checkpoint_views([checkpoint], [])[0]
