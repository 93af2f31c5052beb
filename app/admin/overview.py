"""/admin: the current checkpoint, the sample pool, recent rounds, and launching a round."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from app.admin.pool_status import pool_status
from app.admin.rendering import render
from app.admin.round_form import form_values, parse_round_settings, posted_round_fields
from app.api.responses import status_for
from app.auth.page_guard import CsrfChecked, PageAdmin, PageRoute, Viewer
from app.checkpoints.service import current_checkpoint, under_review
from app.checkpoints.views import checkpoint_views
from app.checkpoints.win_rate import comparisons
from app.deps import SessionDep
from app.errors import Conflict, InvalidInput, QueueUnavailable
from app.rounds import lifecycle
from app.rounds import service as rounds
from app.rounds.lifecycle import ACTIVE
from app.settings import get_settings

router = APIRouter(route_class=PageRoute)
RECENT_ROUNDS = 10


def _overview(request: Request, db: SessionDep, viewer: Viewer, *, error: str = "",
              error_field: str = "", fields: dict[str, str] | None = None,
              status_code: int = 200) -> Response:
    recent = rounds.list_rounds(db, limit=RECENT_ROUNDS)
    candidate = under_review(db)
    return render(
        request, "overview.html", viewer, "overview", status_code=status_code,
        current=current_checkpoint(db), pool=pool_status(db), rounds=recent,
        candidate=checkpoint_views(db, [candidate], comparisons(db, involving=candidate.id))[0] if candidate else None,
        usable=rounds.usable_comparisons(db, "all"), min_comparisons=get_settings().min_round_comparisons,
        ratings_used=rounds.ratings_used(db, [r.id for r in recent]),
        active_round=next((r for r in recent if r.status in ACTIVE), None),
        new_ratings=rounds.new_ratings_since_last_round(db),
        form=form_values(fields), error=error, error_field=error_field,
    )


@router.get("/admin")
def overview(request: Request, db: SessionDep, viewer: PageAdmin) -> Response:
    """The dashboard overview."""
    return _overview(request, db, viewer)


@router.post("/admin/rounds", dependencies=[CsrfChecked])
def launch_round(request: Request, db: SessionDep, viewer: PageAdmin,
                 fields: Annotated[dict[str, str], Depends(posted_round_fields)]) -> Response:
    """Queue a training round from the form, then watch it."""
    try:
        round_ = lifecycle.launch_round(db, parse_round_settings(fields), viewer.user.id)
    except (InvalidInput, Conflict, QueueUnavailable) as error:
        return _overview(request, db, viewer, error=str(error),
                         error_field=getattr(error, "field", None) or "",
                         fields=fields, status_code=status_for(error))
    return RedirectResponse(f"/admin/rounds/{round_.id}", status_code=303)
