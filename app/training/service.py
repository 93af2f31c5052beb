"""Training rounds: launch, watch, cancel; a stale worker's round is failed, never left running.

A launch is refused at once when the round could not work: no current
checkpoint, another round active, a candidate still under review, or fewer
decisive comparisons in its ratings than `min_round_comparisons`.
"""

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.checkpoints.service import current_checkpoint, under_review
from app.errors import Conflict, InvalidInput, NotFound
from app.feedback.examples import ComparisonCounts, comparisons_of, count, rating_rows
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
    candidate = under_review(db)
    if candidate is not None:
        raise Conflict(f"checkpoint v{candidate.version} is a candidate under review; the next round "
                       "trains from whichever checkpoint is current once raters (or an admin) decide")
    check_enough_ratings(usable_comparisons(db, settings.ratings), settings.ratings)
    ensure_queue_available()
    round_ = TrainingRound(algorithm=settings.algorithm, config=settings.model_dump(),
                           created_by_id=user.id if user else None, status=RoundStatus.queued)
    db.add(round_)
    db.flush()
    send_after_commit(db, RUN_ROUND, [round_.id], queue="train")
    return round_


def usable_comparisons(db: Session, which: str) -> ComparisonCounts:
    """What the ratings a round would use ("all" or "since_last_round") give it to train on."""
    rows = rating_rows(db, which)
    return count(comparisons_of(rows), len(rows))


def check_enough_ratings(counts: ComparisonCounts, which: str) -> None:
    minimum = get_settings().min_round_comparisons
    if counts.decisive < minimum:
        raise Conflict(f"not enough ratings for a round: the {which.replace('_', ' ')} ratings "
                       f"({counts.describe()}); a round needs at least {minimum} decisive comparisons "
                       "(TUNELOOP_MIN_ROUND_COMPARISONS)")


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
    """Automatic rounds (off by default): every N new ratings, or every M minutes with news;
    never while a candidate is under review or with too few ratings to train on."""
    settings = get_settings()
    new = new_ratings_since_last_round(db)
    due = bool(settings.auto_round_every_ratings) and new >= settings.auto_round_every_ratings
    if not due and settings.auto_round_every_minutes and new >= MIN_NEW_RATINGS:
        last = db.scalar(select(func.max(TrainingRound.created_at)))
        due = last is None or utcnow() - last >= timedelta(minutes=settings.auto_round_every_minutes)
    # The costlier checks only once a round is otherwise due.
    return (due and under_review(db) is None
            and usable_comparisons(db, "all").decisive >= settings.min_round_comparisons)
