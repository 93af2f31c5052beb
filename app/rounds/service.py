"""Training rounds as the API and the dashboard read them, what their ratings are worth, and when
an automatic round is due. Reading changes nothing: every change is app.rounds.lifecycle's."""

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.checkpoints.service import under_review
from app.errors import Conflict, NotFound
from app.feedback.examples import ComparisonCounts, comparisons_of, count, rating_rows, thumbs_of
from app.models import Rating, RoundMetric, RoundRating, TrainingRound, utcnow
from app.settings import get_settings

# A scheduled round waits for at least this much new feedback.
MIN_NEW_RATINGS = 8


def usable_comparisons(db: Session, which: str, exclude_raters: list[str] | None = None) -> ComparisonCounts:
    """What the ratings a round would use ("all" or "since_last_round", less the excluded raters')
    give it to train on."""
    rows = rating_rows(db, which, exclude_raters or ())
    return count(comparisons_of(rows), len(rows), len(thumbs_of(rows)))


def check_enough_ratings(counts: ComparisonCounts, which: str, algorithm: str) -> None:
    """A round needs `min_round_comparisons` decisive comparisons; a PPO round, whose reward model
    also learns from thumbs, as many thumbs will do instead."""
    minimum = get_settings().min_round_comparisons
    if counts.decisive >= minimum or (algorithm == "ppo" and counts.thumbs >= minimum):
        return
    thumbs = (f" (or, for PPO, {minimum} thumbs)" if algorithm == "ppo"
              else "; thumbs train PPO's reward model, not DPO")
    raise Conflict(f"not enough ratings for a round: the {which.replace('_', ' ')} ratings "
                   f"({counts.describe()}); a round needs at least {minimum} decisive comparisons{thumbs} "
                   "(TUNELOOP_MIN_ROUND_COMPARISONS)")


def get_round(db: Session, round_id: int) -> TrainingRound:
    round_ = db.get(TrainingRound, round_id)
    if round_ is None:
        raise NotFound(f"no round {round_id}")
    return round_


def list_rounds(db: Session, limit: int = 50) -> list[TrainingRound]:
    return list(db.scalars(select(TrainingRound).order_by(TrainingRound.id.desc()).limit(limit)))


def ratings_used(db: Session, round_ids: list[int]) -> dict[int, int]:
    rows = db.execute(select(RoundRating.round_id, func.count()).where(RoundRating.round_id.in_(round_ids))
                      .group_by(RoundRating.round_id))
    return dict(rows.tuples().all())


def round_metrics(db: Session, round_id: int, after_id: int = 0) -> list[RoundMetric]:
    return list(db.scalars(select(RoundMetric).where(RoundMetric.round_id == round_id,
                                                     RoundMetric.id > after_id)
                           .order_by(RoundMetric.id)))


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
