"""A round's life, in one place: every change of a round's status goes through here.

    queued ──claim──▶ running ──finish──▶ succeeded | rejected | failed | cancelled
       │                 │  heartbeat (the worker proves it is alive; says if it must stop)
       └─cancel─▶ cancelled   cancel: a running round stops at its next step
                         └─fail_stale──▶ failed (its worker went silent)

The web side launches and cancels, the training worker claims, beats and
finishes, the beat fails stale rounds; each change is one conditional UPDATE,
so two processes never both win it, and launches take turns (a transaction lock),
so two never both find no round active. Reading a round changes nothing.

A launch is refused at once when the round could not work: no current
checkpoint, another round active, a candidate still under review, or fewer
decisive comparisons in its ratings than `min_round_comparisons`.
"""

from datetime import timedelta
from typing import Literal

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, aliased

from app.checkpoints.service import current_checkpoint, under_review
from app.db import TransactionLock, lock_transaction
from app.errors import Conflict, InvalidInput
from app.models import RoundStatus, TrainingRound, User, utcnow
from app.queue import RUN_ROUND, ensure_queue_available, send_after_commit
from app.rounds.schemas import RoundSettings
from app.rounds.service import check_enough_ratings, get_round, usable_comparisons
from app.settings import get_settings

ACTIVE = (RoundStatus.queued, RoundStatus.running)


def launch_round(db: Session, settings: RoundSettings, created_by_id: int | None) -> TrainingRound:
    """queued: the round is stored, and its id sent to the train queue once committed; created_by_id
    is the admin who launched it (None: the schedule)."""
    lock_transaction(db, TransactionLock.launch_round)
    fail_stale_rounds(db)
    if current_checkpoint(db) is None:
        raise InvalidInput("no current checkpoint: register one first "
                           "(tuneloop checkpoint build-base or checkpoint register PATH)")
    if db.scalar(select(func.count()).select_from(TrainingRound).where(TrainingRound.status.in_(ACTIVE))):
        raise Conflict("a round is already queued or running; wait for it or cancel it")
    candidate = under_review(db)
    if candidate is not None:
        raise Conflict(f"checkpoint v{candidate.version} is a candidate under review; the next round "
                       "trains from whichever checkpoint is current once raters (or an admin) decide")
    unknown = sorted(set(settings.exclude_raters) - set(db.scalars(
        select(User.name).where(User.name.in_(settings.exclude_raters)))))
    if unknown:
        raise InvalidInput(f"exclude_raters: no user named {', '.join(map(repr, unknown))}", field="exclude_raters")
    check_enough_ratings(usable_comparisons(db, settings.ratings, settings.exclude_raters), settings.ratings,
                         settings.algorithm)
    ensure_queue_available()
    round_ = TrainingRound(algorithm=settings.algorithm, config=settings.model_dump(),
                           created_by_id=created_by_id, status=RoundStatus.queued)
    db.add(round_)
    db.flush()
    send_after_commit(db, RUN_ROUND, [round_.id], queue="train")
    return round_


def cancel_round(db: Session, round_id: int) -> TrainingRound:
    """A queued round ends at once; a running one is asked to stop, and does at its next step."""
    round_ = get_round(db, round_id)
    if round_.status.finished:
        raise Conflict(f"round {round_id} already {round_.status}")
    round_.cancel_requested = True
    if round_.status == RoundStatus.queued:
        round_.status, round_.finished_at = RoundStatus.cancelled, utcnow()
        round_.error = "cancelled before it started"
    db.flush()
    return round_


def claim_round(db: Session, round_id: int, worker: str) -> bool:
    """running: taken by this worker, if still queued and no other round runs."""
    other = aliased(TrainingRound)
    now = utcnow()
    return bool(db.execute(
        update(TrainingRound)
        .where(TrainingRound.id == round_id, TrainingRound.status == RoundStatus.queued,
               ~exists().where(other.status == RoundStatus.running))
        .values(status=RoundStatus.running, worker=worker, started_at=now, heartbeat_at=now)
    ).rowcount)


def heartbeat(db: Session, round_id: int, worker: str) -> Literal["running", "cancel", "lost"]:
    """The worker is alive; the answer says whether to go on, stop (cancel asked), or give up (not ours)."""
    row = db.execute(select(TrainingRound.status, TrainingRound.cancel_requested, TrainingRound.worker)
                     .where(TrainingRound.id == round_id)).one()
    if row.status != RoundStatus.running or row.worker != worker:
        return "lost"
    db.execute(update(TrainingRound).where(TrainingRound.id == round_id).values(heartbeat_at=utcnow()))
    return "cancel" if row.cancel_requested else "running"


def finish_round(db: Session, round_id: int, worker: str, status: RoundStatus, error: str | None = None, *,
                 unless_cancelled: bool = False, **values) -> bool:
    """The end, if this worker still owns the round (and, for a result, no cancel was asked meanwhile)."""
    owned = [TrainingRound.id == round_id, TrainingRound.status == RoundStatus.running,
             TrainingRound.worker == worker]
    if unless_cancelled:
        owned.append(TrainingRound.cancel_requested.is_(False))
    return bool(db.execute(update(TrainingRound).where(*owned)
                           .values(status=status, error=error, finished_at=utcnow(), **values)).rowcount)


def fail_stale_rounds(db: Session) -> int:
    """failed: running rounds whose worker stopped beating (killed, lost its machine)."""
    timeout = get_settings().round_heartbeat_timeout_seconds
    cutoff = utcnow() - timedelta(seconds=timeout)
    return db.execute(
        update(TrainingRound)
        .where(TrainingRound.status == RoundStatus.running, TrainingRound.heartbeat_at < cutoff)
        .values(status=RoundStatus.failed, finished_at=utcnow(),
                error=f"worker lost: no heartbeat for {timeout}s; the current checkpoint is unchanged")
    ).rowcount
