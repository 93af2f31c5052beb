"""/api/v1/checkpoints: lineage, metrics, human win rates; promotion and rollback."""

from fastapi import APIRouter

from app.api.types import IdText
from app.checkpoints.service import get_checkpoint, list_checkpoints, make_current, reject_checkpoint
from app.checkpoints.views import checkpoint_views
from app.checkpoints.win_rate import comparisons
from app.deps import CurrentAdmin, SessionDep
from app.rounds.schemas import CheckpointOut

router = APIRouter(prefix="/checkpoints", tags=["checkpoints"])
ADMIN_ERRORS = {401: {"description": "no or bad token"}, 403: {"description": "admins only"}}


@router.get("", response_model=list[CheckpointOut], responses=ADMIN_ERRORS)
def get_checkpoints(db: SessionDep, _: CurrentAdmin) -> list[CheckpointOut]:
    """Every checkpoint, newest first, with lineage, metrics, status, human win rate and review."""
    return checkpoint_views(db, list_checkpoints(db), comparisons(db))


@router.post("/{checkpoint_id}/promote", response_model=CheckpointOut,
             responses=ADMIN_ERRORS | {404: {"description": "no such checkpoint"},
                                       409: {"description": "not promotable"}})
def promote_checkpoint(checkpoint_id: IdText, db: SessionDep, admin: CurrentAdmin) -> CheckpointOut:
    """Make a checkpoint current by hand: a candidate, a rejected one, or a rollback to an older one."""
    checkpoint = get_checkpoint(db, checkpoint_id)
    make_current(db, checkpoint, reason=f"promoted by hand by {admin.name}")
    return checkpoint_views(db, [checkpoint], [])[0]


@router.post("/{checkpoint_id}/reject", response_model=CheckpointOut,
             responses=ADMIN_ERRORS | {404: {"description": "no such checkpoint"},
                                       409: {"description": "it is current"}})
def reject_checkpoint_by_hand(checkpoint_id: IdText, db: SessionDep, admin: CurrentAdmin) -> CheckpointOut:
    """Turn a candidate (or another checkpoint that is not current) down by hand."""
    checkpoint = get_checkpoint(db, checkpoint_id)
    reject_checkpoint(db, checkpoint, f"rejected by hand by {admin.name}")
    return checkpoint_views(db, [checkpoint], [])[0]
