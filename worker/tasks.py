"""Celery tasks: thin wrappers that take ids and call the worker's plain functions."""

import logging

from celery.signals import worker_ready
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app.checkpoints.review import review_candidates
from app.db import session_scope
from app.errors import Conflict
from app.models import RoundStatus, TrainingRound
from app.queue import RUN_ROUND
from app.rounds.lifecycle import fail_stale_rounds, launch_round
from app.rounds.schemas import RoundSettings
from app.rounds.service import auto_round_due
from app.settings import get_settings
from worker.celery_app import celery_app

logger = logging.getLogger(__name__)


@celery_app.task(name="tuneloop.refill_pool", autoretry_for=(OperationalError,),
                 retry_backoff=True, max_retries=5)
def refill_pool_task() -> int:
    from worker.pool import refill_pool  # torch loads only in workers that generate

    return refill_pool()


@celery_app.task(name=RUN_ROUND)
def run_round_task(round_id: int) -> str:
    from worker.rounds import execute_round

    status = execute_round(round_id)
    if status == RoundStatus.succeeded:
        # A new current checkpoint, or a candidate to compare with it: sample the next items now.
        refill_pool_task.apply_async(queue="generate")
    return str(status)


@celery_app.task(name="tuneloop.dispatch_rounds", autoretry_for=(OperationalError,),
                 retry_backoff=True, max_retries=5)
def dispatch_rounds_task() -> list[int]:
    """Fail rounds of dead workers, apply the raters' verdict on a candidate, start automatic
    rounds, re-send queued rounds whose message was lost (the database, not the broker,
    says what is queued)."""
    settings = get_settings()
    with session_scope() as db:
        fail_stale_rounds(db)
        review_candidates(db)
        active = db.scalar(select(TrainingRound.id).where(
            TrainingRound.status.in_([RoundStatus.queued, RoundStatus.running])).limit(1))
        if active is None and auto_round_due(db):
            try:
                launch_round(db, RoundSettings(algorithm=settings.auto_round_algorithm), None)
            except Conflict:  # another generation worker's dispatch launched it first
                pass
        queued = list(db.scalars(select(TrainingRound.id).where(TrainingRound.status == RoundStatus.queued)))
    for round_id in queued:
        run_round_task.apply_async(args=[round_id], queue="train")
    return queued


@worker_ready.connect
def _on_start(sender, **_) -> None:
    """A worker first clears what killed writers and downloads left half-written (in the store,
    and in its cache of an object store's checkpoints); a generation worker then fills the pool
    at once, not at the first beat."""
    from app.checkpoints.store import checkpoint_store

    for staging in checkpoint_store().sweep_staging():
        logger.warning("removed %s, left half-written by a stopped worker", staging)
    if "generate" in {queue.name for queue in sender.task_consumer.queues}:
        refill_pool_task.apply_async(queue="generate")
