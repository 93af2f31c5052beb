"""Start a Celery worker for the given queues (what `tuneloop worker` runs), or the beat alone
(what `tuneloop beat` runs)."""

from app.settings import get_settings
from worker.celery_app import QUEUES, celery_app

# The schedule of the periodic refill and round dispatch is kept in memory: at 10-15 s
# intervals there is nothing worth persisting, and the on-disk shelve once came back
# truncated and killed the beat at start (EOFError), which left the pool unrefilled.
IN_MEMORY_SCHEDULER = "--scheduler=celery.beat:Scheduler"


def run_worker(queues: list[str], *, beat: bool | None = None, loglevel: str = "INFO", quiet: bool = False) -> None:
    unknown = set(queues) - set(QUEUES)
    if unknown or not queues:
        from app.errors import InvalidInput

        raise InvalidInput(f"queues must be among {', '.join(QUEUES)}; got {', '.join(queues) or 'none'}")
    settings = get_settings()
    # Model loading reports and progress bars say nothing an operator acts on.
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    if settings.embedded_broker:
        # kombu's SQL transport polls; its 1 s default makes every task wait.
        from kombu.transport import sqlalchemy as sql_transport

        sql_transport.Transport.polling_interval = 0.1
    # One task at a time per process: training and generation each want every core.
    argv = ["worker", "-Q", ",".join(queues), "--pool=solo", f"--loglevel={loglevel}",
            f"--hostname={'+'.join(queues)}@%h"]
    if quiet:  # no start-up banner (the demo prints its own few lines)
        argv.insert(0, "--quiet")
    # The periodic refill and round dispatch run in the generate worker by default (one
    # machine); with several generation workers, `tuneloop beat` runs them once for all.
    if beat if beat is not None else "generate" in queues:
        argv += ["--beat", IN_MEMORY_SCHEDULER]
    celery_app.worker_main(argv)


def run_beat(loglevel: str = "INFO") -> None:
    """The periodic schedule alone: it sends ids to the queues and loads no model. Run one,
    however many workers there are; a second would only send every nudge twice."""
    celery_app.start(["beat", IN_MEMORY_SCHEDULER, f"--loglevel={loglevel}"])
