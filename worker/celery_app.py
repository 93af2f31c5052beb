"""The Celery application: queues `generate` and `train`; Redis or the embedded broker."""

from celery import Celery
from kombu import Queue

from app.settings import get_settings

QUEUES = ("generate", "train")


def broker_urls() -> tuple[str, str]:
    """(broker, result backend). Embedded: kombu's SQLAlchemy transport on SQLite files."""
    settings = get_settings()
    if settings.embedded_broker:
        var = settings.var_dir.resolve()
        var.mkdir(parents=True, exist_ok=True)
        return f"sqla+sqlite:///{var / 'broker.sqlite'}", f"db+sqlite:///{var / 'results.sqlite'}"
    return settings.broker_url, settings.broker_url


def make_celery() -> Celery:
    broker, backend = broker_urls()
    app = Celery("tuneloop", broker=broker, backend=backend, include=["worker.tasks"])
    app.conf.update(
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="generate",
        task_routes={"tuneloop.run_round": {"queue": "train"},
                     # Not "train": a training worker is busy for a whole round (or dead), and this
                     # task is what fails a dead worker's round and applies the raters' verdicts.
                     "tuneloop.dispatch_rounds": {"queue": "generate"},
                     "tuneloop.refill_pool": {"queue": "generate"}},
        # A task is acknowledged when it finishes, so a killed worker's task is redelivered;
        # the round itself is guarded by its database status and heartbeat.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        beat_schedule={
            "refill-pool": {"task": "tuneloop.refill_pool", "schedule": 15.0},
            "dispatch-rounds": {"task": "tuneloop.dispatch_rounds", "schedule": 10.0},
        },
    )
    return app


celery_app = make_celery()
