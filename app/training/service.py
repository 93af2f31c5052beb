"""Training rounds: launch, watch, cancel; a stale worker's round is failed, never left running."""

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.checkpoints.service import current_checkpoint
from app.errors import Conflict, InvalidInput, NotFound
from app.models import (
    Rating,
    RoundMetric,
    RoundRating,
    RoundStatus,
    TrainingRound,
    User,
    utcnow,
)
from app.queue import RUN_ROUND, ensure_queue_available, send_after_commit
from app.settings import get_settings
from app.training.schemas import RoundSettings

ACTIVE = (RoundStatus.queued, RoundStatus.running)
# A scheduled round waits for at least this much new feedback.
MIN_NEW_RATINGS = 8


def launch_round(db: Session, settings: RoundSettings, user: User | None) -> TrainingRound:
    fail_stale_rounds(db)
    if current_checkpoint(db) is None:
        raise InvalidInput("no current checkpoint: register one first "
                           "(tuneloop checkpoint build-base or checkpoint register PATH)")
    if db.scalar(select(func.count()).select_from(TrainingRound)
                 .where(TrainingRound.status.in_(ACTIVE))):
        raise Conflict("a round is already queued or running; wait for it or cancel it")
    ensure_queue_available()
    round_ = TrainingRound(algorithm=settings.algorithm, config=settings.model_dump(),
                           created_by_id=user.id if user else None, status=RoundStatus.queued)
    db.add(round_)
    db.flush()
    send_after_commit(db, RUN_ROUND, [round_.id], queue="train")
    return round_


def get_round(db: Session, round_id: int) -> TrainingRound:
    fail_stale_rounds(db)
    round_ = db.get(TrainingRound, round_id)
    if round_ is None:
        raise NotFound(f"no round {round_id}")
    return round_


def list_rounds(db: Session, limit: int = 50) -> list[TrainingRound]:
    fail_stale_rounds(db)
    return list(db.scalars(select(TrainingRound).order_by(TrainingRound.id.desc()).limit(limit)))


def ratings_used(db: Session, round_ids: list[int]) -> dict[int, int]:
    rows = db.execute(select(RoundRating.round_id, func.count()).where(RoundRating.round_id.in_(round_ids))
                      .group_by(RoundRating.round_id))
    return dict(rows.tuples().all())


def cancel_round(db: Session, round_id: int) -> TrainingRound:
    """A queued round ends at once; a running one stops at its next step."""
    round_ = get_round(db, round_id)
    if round_.status.finished:
        raise Conflict(f"round {round_id} already {round_.status}")
    round_.cancel_requested = True
    if round_.status == RoundStatus.queued:
        round_.status, round_.finished_at = RoundStatus.cancelled, utcnow()
        round_.error = "cancelled before it started"
    db.flush()
    return round_


def round_metrics(db: Session, round_id: int, after_id: int = 0) -> list[RoundMetric]:
    return list(db.scalars(select(RoundMetric).where(RoundMetric.round_id == round_id,
                                                     RoundMetric.id > after_id)
                           .order_by(RoundMetric.id)))


def fail_stale_rounds(db: Session) -> int:
    """Fail running rounds whose worker stopped beating (killed, lost its machine)."""
    timeout = get_settings().round_heartbeat_timeout_seconds
    cutoff = utcnow() - timedelta(seconds=timeout)
    result = db.execute(
        update(TrainingRound)
        .where(TrainingRound.status == RoundStatus.running, TrainingRound.heartbeat_at < cutoff)
        .values(status=RoundStatus.failed, finished_at=utcnow(),
                error=f"worker lost: no heartbeat for {timeout}s; the current checkpoint is unchanged")
    )
    return result.rowcount


def new_ratings_since_last_round(db: Session) -> int:
    last = db.scalar(select(func.max(TrainingRound.created_at)))
    query = select(func.count()).select_from(Rating)
    if last is not None:
        query = query.where(Rating.created_at > last)
    return db.scalar(query) or 0


def auto_round_due(db: Session) -> bool:
    """Automatic rounds (off by default): every N new ratings, or every M minutes with news."""
    settings = get_settings()
    new = new_ratings_since_last_round(db)
    if settings.auto_round_every_ratings and new >= settings.auto_round_every_ratings:
        return True
    if settings.auto_round_every_minutes and new >= MIN_NEW_RATINGS:
        last = db.scalar(select(func.max(TrainingRound.created_at)))
        return last is None or utcnow() - last >= timedelta(minutes=settings.auto_round_every_minutes)
    return False
