"""Prometheus metrics for operators, with the official client library.

Two kinds. Request latency is measured where it happens, per process, by
route (`tuneloop_request_seconds`): with several server processes set
PROMETHEUS_MULTIPROC_DIR to an empty directory they share, and /metrics adds
them up. Everything else is read from the database (and the broker) when
Prometheus scrapes, so every web replica reports the same numbers and no
replica holds state another would need: ratings stored, open items per
source and purpose, rounds by status and their durations, a candidate under
review, and the depth of each task queue.
"""

import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Checkpoint, CheckpointStatus, Item, Prompt, Rating, TrainingRound

REQUEST_SECONDS = Histogram(
    "tuneloop_request_seconds", "Time to answer a request, by method and route template.", ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
ROUND_SECONDS_BUCKETS = (30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600)
QUEUES = ("generate", "train")


class RequestTimer:
    """Pure ASGI middleware: observes each HTTP request's duration under its route template."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            REQUEST_SECONDS.labels(_route_label(scope)).observe(time.perf_counter() - started)


def _route_label(scope: dict) -> str:
    """The route's path template ("GET /api/v1/rounds/{round_id}"), never the raw path: bounded labels."""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    # An included router's route knows its path without the prefix; FastAPI's context has the whole one.
    context = scope.get("fastapi", {}).get("effective_route_context")
    return f"{scope['method']} {getattr(context, 'path', None) or route.path}"


class StateCollector(Collector):
    """What the database and the broker say now, read at each scrape through the request's session
    (on SQLite a second transaction would wait for the first one's lock)."""

    def __init__(self, db: Session):
        self.db = db

    def describe(self):
        return []  # registering must not read the database (the registry would collect() to learn names)

    def collect(self):
        db = self.db
        ratings = db.scalar(select(func.count()).select_from(Rating)) or 0
        open_items = db.execute(select(Prompt.source, Item.purpose, func.count()).select_from(Item).join(
            Prompt, Prompt.id == Item.prompt_id).where(Item.done.is_(False))
            .group_by(Prompt.source, Item.purpose)).all()
        rounds = db.execute(select(TrainingRound.status, func.count()).group_by(TrainingRound.status)).all()
        finished = db.execute(select(TrainingRound.started_at, TrainingRound.finished_at).where(
            TrainingRound.started_at.is_not(None), TrainingRound.finished_at.is_not(None))).all()
        candidates = db.scalar(select(func.count()).select_from(Checkpoint).where(
            Checkpoint.status == CheckpointStatus.candidate)) or 0
        yield CounterMetricFamily("tuneloop_ratings", "Ratings stored (every acknowledged answer, once).",
                                  value=ratings)
        items = GaugeMetricFamily("tuneloop_pool_open_items", "Open items by prompt source and purpose.",
                                  labels=["source", "purpose"])
        for source, purpose, count in open_items:
            items.add_metric([source, str(purpose)], count)
        yield items
        by_status = CounterMetricFamily("tuneloop_rounds", "Training rounds by status.", labels=["status"])
        for status, count in rounds:
            by_status.add_metric([str(status)], count)
        yield by_status
        yield _round_durations([(end - start).total_seconds() for start, end in finished])
        yield GaugeMetricFamily("tuneloop_candidates_under_review",
                                "Checkpoints raters are comparing blind with the current one.", value=candidates)
        depths = _queue_depths()
        if depths:
            gauge = GaugeMetricFamily("tuneloop_queue_depth", "Tasks waiting in each queue.", labels=["queue"])
            for queue, depth in depths.items():
                gauge.add_metric([queue], depth)
            yield gauge


def _round_durations(seconds: list[float]) -> HistogramMetricFamily:
    buckets = [(str(bound), sum(s <= bound for s in seconds)) for bound in ROUND_SECONDS_BUCKETS]
    return HistogramMetricFamily("tuneloop_round_duration_seconds", "Wall time of finished rounds.",
                                 buckets=buckets + [("+Inf", len(seconds))], sum_value=sum(seconds))


def _queue_depths() -> dict[str, int]:
    """Messages waiting per queue; empty when the broker cannot say (it is down, or keeps no count)."""
    from worker.celery_app import celery_app

    try:
        with celery_app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            channel = connection.default_channel
            # Both brokers (Redis, the embedded SQL one) are kombu virtual transports: _size counts a
            # queue's messages, and says 0 for a queue nothing was ever sent to (a passive declare
            # would call that queue missing).
            return {name: int(channel._size(name)) for name in QUEUES}
    except Exception:  # noqa: BLE001 - a scrape reports what it can; the broker's health has its own checks
        return {}


def metrics_page(db: Session) -> tuple[bytes, str]:
    """The exposition text: this process's metrics (every process's under multiprocess) and the state."""
    state = CollectorRegistry()
    state.register(StateCollector(db))
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        MultiProcessCollector(state)
        return generate_latest(state), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY) + generate_latest(state), CONTENT_TYPE_LATEST
