"""/admin/checkpoints: lineage, metrics, human win rates; promote or roll back."""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from app.admin.rendering import not_found, render, status_for
from app.auth.page_guard import CsrfChecked, PageAdmin, PageRoute, Viewer
from app.checkpoints.routes import checkpoint_views
from app.checkpoints.service import current_checkpoint, get_checkpoint, list_checkpoints, make_current
from app.checkpoints.win_rate import comparisons, head_to_head
from app.deps import SessionDep
from app.errors import Conflict, NotFound
from app.models import TrainingRound

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
                      promoted: int | None = None, status_code: int = 200) -> Response:
    checkpoints = list_checkpoints(db)
    games = comparisons(db)
    current = current_checkpoint(db)
    produced_by = dict(db.execute(select(TrainingRound.produced_checkpoint_id, TrainingRound.id)
                                  .where(TrainingRound.produced_checkpoint_id.is_not(None))).tuples().all())
    return render(
        request, "checkpoints.html", viewer, "checkpoints", status_code=status_code,
        views=checkpoint_views(checkpoints, games),
        versions={c.id: c.version for c in checkpoints},
        games_vs_parent={c.id: head_to_head(games, c.id, c.parent_id).games
                         for c in checkpoints if c.parent_id is not None},
        produced_by=produced_by, current_version=current.version if current else None,
        # Only the columns some checkpoint has a value for (PPO-only lineages have no DPO loss).
        summary_metrics=[(key, label) for key, label in SUMMARY_METRICS
                         if any(key in c.metrics for c in checkpoints)],
        error=error, promoted=promoted,
    )


@router.get("/admin/checkpoints")
def checkpoints_page(request: Request, db: SessionDep, viewer: PageAdmin,
                     promoted: int | None = None) -> Response:
    """Every checkpoint with lineage, metrics and human win rate."""
    return _checkpoints_page(request, db, viewer, promoted=promoted)


@router.post("/admin/checkpoints/{checkpoint_id}/promote", dependencies=[CsrfChecked])
def promote_checkpoint(request: Request, db: SessionDep, viewer: PageAdmin,
                       checkpoint_id: int) -> Response:
    """Make a checkpoint current: a promotion, or a rollback to an older one."""
    try:
        checkpoint = get_checkpoint(db, checkpoint_id)
        make_current(db, checkpoint)
    except NotFound as error:
        return not_found(request, viewer, error)
    except Conflict as error:
        return _checkpoints_page(request, db, viewer, error=str(error), status_code=status_for(error))
    return RedirectResponse(f"/admin/checkpoints?promoted={checkpoint.version}", status_code=303)
