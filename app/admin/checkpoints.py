"""/admin/checkpoints: lineage, metrics, human win rates; promote or roll back."""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.admin.rendering import not_found, render
from app.api.responses import status_for
from app.auth.page_guard import CsrfChecked, PageAdmin, PageRoute, Viewer
from app.checkpoints.service import (
    current_checkpoint,
    get_checkpoint,
    list_checkpoints,
    make_current,
    reject_checkpoint,
)
from app.checkpoints.views import checkpoint_views
from app.checkpoints.win_rate import comparisons, head_to_head
from app.deps import SessionDep
from app.errors import Conflict, NotFound
from app.settings import get_settings

router = APIRouter(route_class=PageRoute)

# The few checkpoint metrics worth a column; the rest stay in the API.
SUMMARY_METRICS = (
    ("reward_model/eval_accuracy", "RM eval acc."),
    ("reward_model/accuracy", "RM acc."),
    ("ppo/reward_mean", "reward"),
    ("ppo/kl", "KL"),
    ("dpo/reward_accuracy", "DPO acc."),
    ("dpo/loss", "DPO loss"),
)


def _checkpoints_page(request: Request, db: SessionDep, viewer: Viewer, *, error: str = "",
                      promoted: int | None = None, rejected: int | None = None,
                      status_code: int = 200) -> Response:
    checkpoints = list_checkpoints(db)
    games = comparisons(db)
    current = current_checkpoint(db)
    return render(
        request, "checkpoints.html", viewer, "checkpoints", status_code=status_code,
        views=checkpoint_views(db, checkpoints, games),
        versions={c.id: c.version for c in checkpoints},
        games_vs_parent={c.id: head_to_head(games, c.id, c.parent_id).games
                         for c in checkpoints if c.parent_id is not None},
        current_version=current.version if current else None,
        max_games=get_settings().review_max_comparisons,
        # Only the columns some checkpoint has a value for (PPO-only lineages have no DPO loss).
        summary_metrics=[(key, label) for key, label in SUMMARY_METRICS
                         if any(key in c.metrics for c in checkpoints)],
        error=error, promoted=promoted, rejected=rejected,
    )


@router.get("/admin/checkpoints")
def checkpoints_page(request: Request, db: SessionDep, viewer: PageAdmin,
                     promoted: int | None = None, rejected: int | None = None) -> Response:
    """Every checkpoint with lineage, metrics, status and why, human win rate and review."""
    return _checkpoints_page(request, db, viewer, promoted=promoted, rejected=rejected)


@router.post("/admin/checkpoints/{checkpoint_id}/promote", dependencies=[CsrfChecked])
def promote_checkpoint(request: Request, db: SessionDep, viewer: PageAdmin,
                       checkpoint_id: int) -> Response:
    """Make a checkpoint current: a promotion, or a rollback to an older one."""
    try:
        checkpoint = get_checkpoint(db, checkpoint_id)
        make_current(db, checkpoint, reason=f"promoted by hand by {viewer.user.name}")
    except NotFound as error:
        return not_found(request, viewer, error)
    except Conflict as error:
        return _checkpoints_page(request, db, viewer, error=str(error), status_code=status_for(error))
    return RedirectResponse(f"/admin/checkpoints?promoted={checkpoint.version}", status_code=303)


@router.post("/admin/checkpoints/{checkpoint_id}/reject", dependencies=[CsrfChecked])
def reject_checkpoint_page(request: Request, db: SessionDep, viewer: PageAdmin,
                           checkpoint_id: int) -> Response:
    """Turn a candidate down by hand; the current checkpoint stays."""
    try:
        checkpoint = get_checkpoint(db, checkpoint_id)
        reject_checkpoint(db, checkpoint, f"rejected by hand by {viewer.user.name}")
    except NotFound as error:
        return not_found(request, viewer, error)
    except Conflict as error:
        return _checkpoints_page(request, db, viewer, error=str(error), status_code=status_for(error))
    return RedirectResponse(f"/admin/checkpoints?rejected={checkpoint.version}", status_code=303)
