"""Run one training round: snapshot ratings, fit the reward model, optimise the
policy (PPO or DPO), publish the checkpoint atomically.

The database is the source of truth. A round is claimed with one conditional
UPDATE (so it never runs twice at once), beats a heartbeat while it trains
(a killed worker's round is failed by whoever sees the stale heartbeat), and
publishes only if it still owns the round. A failed or cancelled round leaves
the current checkpoint untouched and says why.
"""

import math
import os
import random
import socket
import threading
import traceback
from pathlib import Path

from sqlalchemy import exists, insert, select, update
from sqlalchemy.orm import aliased

from app.checkpoints.service import add_checkpoint, current_checkpoint, make_current, resolve_path
from app.db import session_scope
from app.models import (
    Prompt,
    Rating,
    RoundMetric,
    RoundRating,
    RoundStatus,
    Sample,
    TrainingRound,
    Verdict,
    utcnow,
)
from app.settings import get_settings
from app.training.schemas import RoundSettings
from worker.training.checkpoint_io import read_metadata
from worker.training.data import PreferencePair, ScoredResponse, TrainingCancelled
from worker.training.dpo import DPOConfig, run_dpo
from worker.training.ppo import PPOConfig, run_ppo
from worker.training.reward_model import RewardModelConfig, fit_reward_model

HEARTBEAT_SECONDS = 5
MIN_COMPARISONS = 4
PPO_PROMPTS = 512


class RoundLost(Exception):
    """Another process declared this round dead (stale heartbeat) or it was cancelled."""


class RoundRun:
    """The live state of a claimed round: heartbeat, cancellation, metrics and log."""

    def __init__(self, round_id: int):
        self.round_id = round_id
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def claim(self) -> bool:
        other = aliased(TrainingRound)
        with session_scope() as db:
            result = db.execute(
                update(TrainingRound)
                .where(TrainingRound.id == self.round_id, TrainingRound.status == RoundStatus.queued,
                       ~exists().where(other.status == RoundStatus.running))
                .values(status=RoundStatus.running, worker=self.worker, started_at=utcnow(),
                        heartbeat_at=utcnow())
            )
        if result.rowcount:
            self._thread.start()
        return bool(result.rowcount)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with session_scope() as db:
                row = db.execute(select(TrainingRound.status, TrainingRound.cancel_requested,
                                        TrainingRound.worker)
                                 .where(TrainingRound.id == self.round_id)).one()
                if row.status != RoundStatus.running or row.worker != self.worker:
                    self.lost.set()
                    return
                if row.cancel_requested:
                    self.cancelled.set()
                db.execute(update(TrainingRound).where(TrainingRound.id == self.round_id)
                           .values(heartbeat_at=utcnow()))

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set()

    def metrics_callback(self, phase: str, progress_from: float, progress_to: float, total_steps: int):
        def on_metrics(step: int, metrics: dict[str, float]) -> None:
            rows = [{"round_id": self.round_id, "phase": phase, "step": step, "name": name,
                     "value": float(value)} for name, value in metrics.items()
                    if isinstance(value, (int, float)) and math.isfinite(value)]
            progress = progress_from + (progress_to - progress_from) * min(1.0, step / max(total_steps, 1))
            with session_scope() as db:
                if rows:
                    db.execute(insert(RoundMetric), rows)
                db.execute(update(TrainingRound).where(TrainingRound.id == self.round_id)
                           .values(progress=progress))
        return on_metrics

    def log(self, line: str) -> None:
        with session_scope() as db:
            round_ = db.get(TrainingRound, self.round_id)
            round_.log += f"{utcnow():%H:%M:%S} {line}\n"

    def stop_heartbeat(self) -> None:
        self._stop.set()

    def finish(self, status: RoundStatus, error: str | None = None, **values) -> bool:
        """Set the final status if this worker still owns the round."""
        self.stop_heartbeat()
        with session_scope() as db:
            result = db.execute(
                update(TrainingRound)
                .where(TrainingRound.id == self.round_id, TrainingRound.status == RoundStatus.running,
                       TrainingRound.worker == self.worker)
                .values(status=status, error=error, finished_at=utcnow(), **values)
            )
        return bool(result.rowcount)


def snapshot_ratings(round_id: int, settings: RoundSettings) -> tuple[list[PreferencePair], list[ScoredResponse]]:
    """Record exactly which ratings the round uses, and turn them into training data."""
    with session_scope() as db:
        query = select(Rating.id)
        if settings.ratings == "since_last_round":
            query = query.where(~exists().where(RoundRating.rating_id == Rating.id))
        rating_ids = list(db.scalars(query.order_by(Rating.id)))
        if rating_ids:
            db.execute(insert(RoundRating), [{"round_id": round_id, "rating_id": r} for r in rating_ids])
        return ratings_to_examples(db, rating_ids)


def ratings_to_examples(db, rating_ids: list[int]) -> tuple[list[PreferencePair], list[ScoredResponse]]:
    pairs, scored = [], []
    for start in range(0, len(rating_ids), 500):
        chunk = rating_ids[start : start + 500]
        ratings = db.scalars(select(Rating).where(Rating.id.in_(chunk))).all()
        sample_ids = {p["sample_id"] for r in ratings for p in r.provenance}
        texts = dict(db.execute(select(Sample.id, Sample.text).where(Sample.id.in_(sample_ids))).tuples().all())
        prompts = dict(db.execute(select(Sample.id, Prompt.text).join(Prompt, Prompt.id == Sample.prompt_id)
                                  .where(Sample.id.in_(sample_ids))).tuples().all())
        for rating in ratings:
            shown = [p["sample_id"] for p in rating.provenance]
            prompt = prompts[shown[0]]
            if rating.verdict == Verdict.preferred:
                pairs += [PreferencePair(prompt, texts[rating.preferred_sample_id], texts[other])
                          for other in shown if other != rating.preferred_sample_id]
            elif rating.verdict in (Verdict.tie, Verdict.both_bad) and len(shown) >= 2:
                # Both say "no preference between these": a tie for Bradley-Terry.
                pairs.append(PreferencePair(prompt, texts[shown[0]], texts[shown[1]], tie=True))
            scored += [ScoredResponse(prompt, texts[int(s)], float(v)) for s, v in rating.scores.items()]
    return pairs, scored


def execute_round(round_id: int) -> str:
    """Run a queued round to its end; returns its final status."""
    run = RoundRun(round_id)
    if not run.claim():
        return "not claimed"
    try:
        _train_and_publish(run)
        return RoundStatus.succeeded
    except (TrainingCancelled, RoundLost):
        if run.lost.is_set():
            return "lost"
        run.finish(RoundStatus.cancelled, "cancelled by an admin; the current checkpoint is unchanged")
        return RoundStatus.cancelled
    except Exception as error:  # noqa: BLE001 - every failure is recorded on the round
        run.log(traceback.format_exc(limit=5))
        run.finish(RoundStatus.failed, f"{error.__class__.__name__}: {error}")
        return RoundStatus.failed


def _train_and_publish(run: RoundRun) -> None:
    store = get_settings().checkpoint_dir.resolve()
    with session_scope() as db:
        round_ = db.get(TrainingRound, run.round_id)
        settings = RoundSettings.model_validate(round_.config)
        base = current_checkpoint(db)
        if base is None:
            raise ValueError("no current checkpoint to train from")
        round_.base_checkpoint_id = base.id
        base_id, base_path = base.id, resolve_path(base)
        prompts = list(db.scalars(select(Prompt.text).where(Prompt.active.is_(True))))
    pairs, scored = snapshot_ratings(run.round_id, settings)
    run.log(f"{settings.algorithm} on checkpoint {base_id}: {len(pairs)} pairs "
            f"({sum(p.tie for p in pairs)} ties), {len(scored)} scores, {len(prompts)} prompts")
    if len(pairs) + len(scored) < MIN_COMPARISONS:
        raise ValueError(f"needs at least {MIN_COMPARISONS} rated comparisons, has {len(pairs) + len(scored)}")

    work = store / "rounds" / str(run.round_id)
    rm_config = RewardModelConfig(seed=settings.seed, epochs=settings.reward_model_epochs)
    rm_steps = settings.reward_model_epochs * math.ceil(len(pairs) / rm_config.batch_size)
    reward = fit_reward_model(base_path, pairs, scored, rm_config, work / "reward_model",
                              on_metrics=run.metrics_callback("reward_model", 0.0, 0.3, rm_steps),
                              should_stop=run.should_stop)
    run.log(f"reward model: {_summary(reward.metrics)}")

    out_dir = store / f"round-{run.round_id}"
    if settings.algorithm == "ppo":
        config = PPOConfig(seed=settings.seed, steps=settings.policy_steps,
                           learning_rate=settings.learning_rate, kl_coef=settings.kl_coef)
        random.Random(settings.seed).shuffle(prompts)
        result = run_ppo(base_path, reward.out_dir, prompts[:PPO_PROMPTS], config, out_dir,
                         on_metrics=run.metrics_callback("ppo", 0.3, 0.95, config.steps),
                         should_stop=run.should_stop)
    else:
        preferences = [p for p in pairs if not p.tie]
        config = DPOConfig(seed=settings.seed, learning_rate=settings.learning_rate, beta=settings.kl_coef)
        config.epochs = max(1, round(settings.policy_steps * config.batch_size / max(len(preferences), 1)))
        total = config.epochs * math.ceil(len(preferences) / config.batch_size)
        result = run_dpo(base_path, preferences, config, out_dir,
                         on_metrics=run.metrics_callback("dpo", 0.3, 0.95, total),
                         should_stop=run.should_stop)
    run.log(f"{settings.algorithm}: {_summary(result.metrics)}")
    metadata = read_metadata(result.out_dir)
    metrics = {f"reward_model/{k}": v for k, v in reward.metrics.items()} | {
        f"{settings.algorithm}/{k}": v for k, v in result.metrics.items()}
    _publish(run, base_id, result.out_dir.relative_to(store).as_posix(), metadata["content_hash"], metrics)


def _publish(run: RoundRun, base_id: int, path: str, content_hash: str, metrics: dict) -> None:
    """Register the verified checkpoint, make it current and close the round, in one transaction."""
    if run.should_stop():
        raise RoundLost()
    run.stop_heartbeat()
    with session_scope() as db:
        owned = db.execute(
            update(TrainingRound)
            .where(TrainingRound.id == run.round_id, TrainingRound.status == RoundStatus.running,
                   TrainingRound.worker == run.worker, TrainingRound.cancel_requested.is_(False))
            .values(status=RoundStatus.succeeded, finished_at=utcnow(), progress=1.0)
        ).rowcount
        if not owned:
            raise RoundLost()
        checkpoint = add_checkpoint(db, path=path, name=Path(path).name, parent_id=base_id,
                                    content_hash=content_hash, metrics=metrics)
        make_current(db, checkpoint)
        db.execute(update(TrainingRound).where(TrainingRound.id == run.round_id)
                   .values(produced_checkpoint_id=checkpoint.id))


def _summary(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in sorted(metrics.items()) if isinstance(v, (int, float)))
