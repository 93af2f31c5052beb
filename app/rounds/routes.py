"""/api/v1/rounds: launch, list, watch and cancel training rounds (admins)."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.types import MAX_ID, IdText
from app.deps import CurrentAdmin, SessionDep
from app.models import TrainingRound
from app.rounds import lifecycle, service
from app.rounds.schemas import MetricPoint, RoundCreated, RoundDetail, RoundOut, RoundSettings

router = APIRouter(prefix="/rounds", tags=["rounds"])
ADMIN_ERRORS = {401: {"description": "no or bad token"}, 403: {"description": "admins only"}}
NOT_FOUND = {404: {"description": "no such round"}}


def _views(db, rounds: list[TrainingRound], detail: bool = False) -> list:
    used = service.ratings_used(db, [r.id for r in rounds])
    schema = RoundDetail if detail else RoundOut
    return [schema.model_validate(r).model_copy(update={
        "ratings_used": used.get(r.id, 0),
        "base_checkpoint_version": r.base_checkpoint.version if r.base_checkpoint else None,
        "produced_checkpoint_version": r.produced_checkpoint.version if r.produced_checkpoint else None,
    }) for r in rounds]


@router.post("", response_model=RoundCreated, status_code=status.HTTP_201_CREATED,
             responses=ADMIN_ERRORS | {409: {"description": "a round is already active, a candidate is under "
                                                      "review, or the ratings give too few decisive comparisons"},
                                       422: {"description": "bad settings, or no current checkpoint"},
                                       503: {"description": "the task queue is unavailable"}})
def launch_round(settings: RoundSettings, db: SessionDep, admin: CurrentAdmin) -> RoundCreated:
    """Queue a training round (PPO or DPO) on the current checkpoint."""
    round_ = lifecycle.launch_round(db, settings, admin.id)
    return RoundCreated(id=round_.id, status=round_.status)


@router.get("", response_model=list[RoundOut], responses=ADMIN_ERRORS)
def list_rounds(db: SessionDep, _: CurrentAdmin) -> list[RoundOut]:
    """The latest rounds, newest first."""
    return _views(db, service.list_rounds(db))


@router.get("/{round_id}", response_model=RoundDetail, responses=ADMIN_ERRORS | NOT_FOUND)
def get_round(round_id: IdText, db: SessionDep, _: CurrentAdmin) -> RoundDetail:
    """One round: status, produced checkpoint, error and log."""
    return _views(db, [service.get_round(db, round_id)], detail=True)[0]


@router.get("/{round_id}/metrics", response_model=list[MetricPoint], responses=ADMIN_ERRORS | NOT_FOUND)
def get_round_metrics(round_id: IdText, db: SessionDep, _: CurrentAdmin,
                      after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> list[MetricPoint]:
    """Per-step metrics (reward, KL, loss, RM accuracy...) for charts; poll with after_id."""
    service.get_round(db, round_id)
    return [MetricPoint(id=m.id, phase=m.phase, step=m.step, name=m.name, value=m.value)
            for m in service.round_metrics(db, round_id, after_id)]


@router.post("/{round_id}/cancel", response_model=RoundOut,
             responses=ADMIN_ERRORS | NOT_FOUND | {409: {"description": "already finished"}})
def cancel_round(round_id: IdText, db: SessionDep, _: CurrentAdmin) -> RoundOut:
    """Cancel a queued or running round; the current checkpoint stays as it is."""
    return _views(db, [lifecycle.cancel_round(db, round_id)])[0]
