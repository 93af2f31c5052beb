"""Sending work to the Celery workers: by task name, ids only, after the commit."""

import logging

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.errors import QueueUnavailable

log = logging.getLogger(__name__)

RUN_ROUND = "tuneloop.run_round"
REFILL_POOL = "tuneloop.refill_pool"


def ensure_queue_available() -> None:
    """Fail fast (QueueUnavailable) when the broker cannot be reached."""
    from worker.celery_app import celery_app

    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as error:  # kombu raises many kinds; all mean "not reachable"
        raise QueueUnavailable(f"the task queue is unavailable ({error.__class__.__name__}); "
                               "try again when the broker is back") from None


def send_after_commit(db: Session, task_name: str, args: list, queue: str) -> None:
    """Send a task once the surrounding transaction has committed (never for a rollback)."""

    def send(_session) -> None:
        from worker.celery_app import celery_app

        try:
            celery_app.send_task(task_name, args=args, queue=queue)
        except Exception as error:  # noqa: BLE001
            # The database stays the source of truth: workers also poll for
            # queued work, so a lost nudge only delays it.
            log.warning("could not send %s%s: %s", task_name, args, error)

    event.listen(db, "after_commit", send, once=True)
