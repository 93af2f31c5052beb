"""/admin/rounds/{id}: watch one round live (admin.js polls the rounds API) and cancel it."""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.admin.rendering import not_found, render
from app.api.responses import status_for
from app.auth.page_guard import CsrfChecked, PageAdmin, PageRoute, Viewer
from app.deps import SessionDep
from app.errors import Conflict, NotFound
from app.models import TrainingRound
from app.rounds import lifecycle
from app.rounds import service as rounds
from app.rounds.schemas import RoundSettings

router = APIRouter(route_class=PageRoute)


def _round_page(request: Request, db: SessionDep, viewer: Viewer, round_: TrainingRound, *,
                error: str = "", cancelled: bool = False, status_code: int = 200) -> Response:
    return render(request, "round.html", viewer, "overview", status_code=status_code,
                  round=round_, settings=RoundSettings.model_validate(round_.config),
                  ratings_used=rounds.ratings_used(db, [round_.id]).get(round_.id, 0),
                  error=error, cancelled=cancelled)


@router.get("/admin/rounds/{round_id}")
def round_page(request: Request, db: SessionDep, viewer: PageAdmin, round_id: int,
               cancelled: bool = False) -> Response:
    """One round: status, progress, live charts, log."""
    try:
        round_ = rounds.get_round(db, round_id)
    except NotFound as error:
        return not_found(request, viewer, error)
    return _round_page(request, db, viewer, round_, cancelled=cancelled)


@router.post("/admin/rounds/{round_id}/cancel", dependencies=[CsrfChecked])
def cancel_round(request: Request, db: SessionDep, viewer: PageAdmin, round_id: int) -> Response:
    """Cancel a queued or running round; the current checkpoint stays."""
    try:
        lifecycle.cancel_round(db, round_id)
    except NotFound as error:
        return not_found(request, viewer, error)
    except Conflict as error:
        return _round_page(request, db, viewer, rounds.get_round(db, round_id), error=str(error),
                           status_code=status_for(error))
    return RedirectResponse(f"/admin/rounds/{round_id}?cancelled=true", status_code=303)
