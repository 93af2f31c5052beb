"""Run one training round: snapshot ratings, fit the reward model (PPO), optimise
the policy under a watch, judge the result by its gates, publish it atomically.

The database is the source of truth. A round is claimed with one conditional
UPDATE (so it never runs twice at once), beats a heartbeat while it trains
(a killed worker's round is failed by whoever sees the stale heartbeat), and
publishes only if it still owns the round. A failed or cancelled round leaves
the current checkpoint untouched and says why. With `TUNELOOP_TRAIN_PROCESSES`
above 1 each trainer runs on that many processes under torchrun
(worker.training.launch), which this process starts and watches; with
`TUNELOOP_TRAIN_NODES` above 1, on that many machines, this one node 0
(worker.train_node). The processes hold whole weights each (DDP) or shards of
them (FSDP), as `TUNELOOP_TRAIN_SHARDING` and the memory estimate decide
(worker.training.devices.check_fits).

What a round's result becomes depends on its gates (worker.gates) and on
`TUNELOOP_PROMOTION`: a result that fails a gate is registered as rejected
(the round ends "rejected", the current checkpoint unchanged); one that
passes becomes a candidate that raters compare blind with the current
checkpoint (app.checkpoints.review), or current at once with "gates". With
"immediate" it becomes current whatever its gates say.

Held out from training: a share of the comparisons (the reward model's and
DPO's accuracy), and a set of active prompts that PPO never trains on, on
which the watch samples the policy and the parent side by side.
"""

import math
import os
import random
import socket
import threading
import traceback
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import insert, select, update

from app.checkpoints.model_dir import inspect_model_dir
from app.checkpoints.service import add_checkpoint, current_checkpoint, make_current
from app.checkpoints.store import CheckpointStore, checkpoint_store
from app.db import session_scope
from app.errors import Conflict
from app.feedback.examples import comparisons_of, count, rating_rows, thumbs_of
from app.feedback.reliability import rater_weights, reliabilities
from app.models import (
    CheckpointStatus,
    Prompt,
    RoundMetric,
    RoundRating,
    RoundStatus,
    TrainingRound,
    User,
    utcnow,
)
from app.rounds.lifecycle import claim_round, finish_round, heartbeat
from app.rounds.schemas import RoundSettings
from app.rounds.service import check_enough_ratings
from app.settings import get_settings
from worker.checkpoint_models import model_ref
from worker.gates import Gate, policy_gates, reward_model_gate
from worker.rated import training_examples
from worker.train_node import share_with_nodes, train_on_nodes
from worker.training.checkpoint_io import read_metadata
from worker.training.data import PreferencePair, TrainingCancelled, TrainResult, UnaryExample
from worker.training.devices import GIB, DoesNotFit, check_fits, pick_device, resolve_dtype
from worker.training.dpo import DPOConfig
from worker.training.launch import Rendezvous, run_trainer
from worker.training.lora import is_adapter
from worker.training.ppo import PPOConfig
from worker.training.reward_model import RewardModelConfig
from worker.training.sequences import prompt_of
from worker.training.watch import WatchConfig

HEARTBEAT_SECONDS = 5
PPO_PROMPTS = 512
HELD_OUT_SHARE = 0.2  # of the comparisons: the reward model's and DPO's held-out accuracy
PROBE_PROMPTS = 64  # active prompts the watch samples, never trained on by PPO
DPO_MAX_EPOCHS = 8
# lora_r null: models this large train LoRA adapters of this rank (published as adapters on their base;
# the reference is the base with the adapter off: no second copy), and a round from an adapter checkpoint
# trains that adapter on; smaller full models train every weight. Models this large also train with
# gradient checkpointing when TUNELOOP_TRAIN_GRADIENT_CHECKPOINTING is "auto".
LORA_FROM_PARAMETERS, DEFAULT_LORA_R = 300_000_000, 16
# Watch checks over a policy phase that runs to its end. DPO can go from a KL of 1
# to 100 nats in 10 steps on this project's small model (bench/README.md), so
# checks come every 5 steps of a default 80-step round.
CHECKS_PER_ROUND = 16


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
        with session_scope() as db:
            claimed = claim_round(db, self.round_id, self.worker)
        if claimed:
            self._thread.start()
        return claimed

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with session_scope() as db:
                state = heartbeat(db, self.round_id, self.worker)
            if state == "lost":
                self.lost.set()
                return
            if state == "cancel":
                self.cancelled.set()

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
            return finish_round(db, self.round_id, self.worker, status, error, **values)


class Snapshot(NamedTuple):
    pairs: list[PreferencePair]
    thumbs: list[UnaryExample]
    rater_weights: dict[str, float]  # by name


def snapshot_ratings(round_id: int, settings: RoundSettings) -> Snapshot:
    """Record exactly which ratings the round uses, and turn them into comparisons and thumbs
    (app.feedback.examples decides what each rating means), weighted by their raters'
    reliability unless the round turns that off; also each rater's weight."""
    with session_scope() as db:
        rows = rating_rows(db, settings.ratings, settings.exclude_raters)
        if rows:
            db.execute(insert(RoundRating), [{"round_id": round_id, "rating_id": r.rating_id} for r in rows])
        raters = {r.rater_id for r in rows}
        weights = (rater_weights(reliabilities(db), raters) if settings.rater_weights
                   else dict.fromkeys(raters, 1.0))
        names = dict(db.execute(select(User.id, User.name).where(User.id.in_(raters))).tuples().all())
        comparisons, thumbs = comparisons_of(rows, weights), thumbs_of(rows, weights)
        check_enough_ratings(count(comparisons, len(rows), len(thumbs)), settings.ratings, settings.algorithm)
        pairs, unary = training_examples(db, comparisons, thumbs)
    return Snapshot(pairs, unary, {names[rater]: round(weight, 3) for rater, weight in sorted(weights.items())})


def execute_round(round_id: int) -> str:
    """Run a queued round to its end; returns its final status."""
    run = RoundRun(round_id)
    if not run.claim():
        return "not claimed"
    try:
        return _train_and_publish(run)
    except (TrainingCancelled, RoundLost):
        if run.lost.is_set():
            return "lost"
        run.finish(RoundStatus.cancelled, "cancelled by an admin; the current checkpoint is unchanged")
        return RoundStatus.cancelled
    except (Conflict, DoesNotFit) as error:  # refused at its start (too few ratings, too big): a message
        run.log(str(error))
        run.finish(RoundStatus.failed, str(error))
        return RoundStatus.failed
    except Exception as error:  # noqa: BLE001 - every failure is recorded on the round
        run.log(traceback.format_exc(limit=5))
        run.finish(RoundStatus.failed, f"{error.__class__.__name__}: {error}")
        return RoundStatus.failed


def _train_and_publish(run: RoundRun) -> RoundStatus:
    app_settings = get_settings()
    store = checkpoint_store()
    with session_scope() as db:
        round_ = db.get(TrainingRound, run.round_id)
        settings = RoundSettings.model_validate(round_.config)
        base = current_checkpoint(db)
        if base is None:
            raise ValueError("no current checkpoint to train from")
        round_.base_checkpoint_id = base_id = base.id
        prompts = [prompt_of(text, messages) for text, messages in db.execute(
            select(Prompt.text, Prompt.messages).where(Prompt.active.is_(True)).order_by(Prompt.id))]
    # In a session of its own: from an object store this may download for minutes, which must not
    # hold the round's row (its heartbeat writes it).
    with session_scope() as db:
        base_path, full = model_ref(db, base)
    comparisons, thumbs, weights = snapshot_ratings(run.round_id, settings)
    decisive = [c for c in comparisons if not c.tie]
    random.Random(settings.seed).shuffle(prompts)
    # With no more active prompts than the probe takes, PPO trains on the probe's prompts too.
    probe, train_prompts = prompts[:PROBE_PROMPTS], prompts[PROBE_PROMPTS:] or prompts
    report: dict = {"comparisons": {"decisive": len(decisive), "ties": len(comparisons) - len(decisive)},
                    "held_out_prompts": len(probe), "rater_weights": weights, "thumbs": len(thumbs)}
    run.log(f"{settings.algorithm} on checkpoint {base_id}: {len(decisive)} decisive comparisons, "
            f"{len(comparisons) - len(decisive)} ties; {len(train_prompts)} training prompts, "
            f"{len(probe)} held out")
    watch = WatchConfig(prompts=probe, kl_budget=settings.kl_budget, seed=settings.seed,
                        max_new_tokens=app_settings.generation_max_new_tokens,
                        temperature=app_settings.generation_temperature or 1.0)
    parameters = inspect_model_dir(full.path).parameters
    large = (parameters or 0) > LORA_FROM_PARAMETERS
    lora_r = settings.lora_r
    if lora_r is None:
        lora_r = DEFAULT_LORA_R if is_adapter(base_path) or large else 0
    device = pick_device("auto")
    dtype = resolve_dtype(app_settings.train_dtype, device)
    checkpointing = {"on": True, "off": False}.get(app_settings.train_gradient_checkpointing, large)
    processes = app_settings.train_processes
    nodes = (Rendezvous(app_settings.train_nodes, app_settings.train_master,
                        app_settings.train_rendezvous_timeout_seconds) if app_settings.train_nodes > 1 else None)
    # With safetensors the size is known before loading anything; an unknown size checks no memory
    # (and "auto" sharding takes DDP).
    fit = check_fits(parameters or 0, ["reward_model", "ppo"] if settings.algorithm == "ppo" else ["dpo"],
                     lora_r > 0, device, int(app_settings.train_memory_gib * GIB) or None, processes,
                     app_settings.train_sharding, app_settings.train_nodes)
    report |= {"lora_r": lora_r, "device": device.type, "dtype": dtype, "gradient_checkpointing": checkpointing,
               "processes": processes, "nodes": app_settings.train_nodes, "sharded": fit.sharded}
    if parameters is not None:
        report["memory_estimate_gib"] = round(fit.needed / GIB, 3)
    gates: list[Gate] = []
    work = store.new_local_dir(f"rounds/{run.round_id}")
    out_dir = store.new_local_dir(f"round-{run.round_id}")
    parallel = "FSDP" if fit.sharded else "DDP"
    if nodes is not None:
        run.log(f"training on {nodes.nodes} nodes x {processes} processes (torchrun, {parallel}; this worker is "
                f"node 0, at {nodes.master}; logs under {work})")
    elif processes > 1:
        run.log(f"training on {processes} processes (torchrun, {parallel}; logs under {work})")

    def train(trainer: str, reward_model: tuple[str, str] | None = None, **arguments) -> TrainResult:
        """A trainer's run: here, or on every node (the others load `reward_model` from the store)."""
        if nodes is None:
            return run_trainer(trainer, processes, work / f"{trainer}-job", should_stop=run.should_stop, **arguments)
        return train_on_nodes(run.round_id, nodes, base_id, reward_model, trainer, processes, work / f"{trainer}-job",
                              should_stop=run.should_stop, **arguments)

    if settings.algorithm == "ppo":
        rm_config = RewardModelConfig(seed=settings.seed, epochs=settings.reward_model_epochs,
                                      eval_fraction=HELD_OUT_SHARE, lora_r=lora_r, dtype=dtype,
                                      gradient_checkpointing=checkpointing, sharded=fit.sharded)
        rm_steps = rm_config.epochs * rm_config.steps_per_epoch(len(comparisons))
        reward = train("reward_model", policy_dir=base_path, comparisons=comparisons, config=rm_config,
                       out_dir=work / "reward_model", base=full, unary=thumbs,
                       on_metrics=run.metrics_callback("reward_model", 0.0, 0.3, rm_steps))
        run.log(f"reward model: {_summary(reward.metrics)}")
        report["reward_model"] = {"steps": int(reward.metrics["steps"]), "epochs": settings.reward_model_epochs,
                                  "train_comparisons": int(reward.metrics["train_pairs"]),
                                  "held_out_comparisons": int(reward.metrics["eval_pairs"])}
        gates.append(reward_model_gate(reward.metrics))
        if not gates[-1].passed and app_settings.promotion != "immediate":
            report["policy"] = {"steps_planned": settings.policy_steps, "steps_run": 0,
                                "stopped": "the reward model is not above chance: no policy step was taken"}
            return _reject(run, gates, report)
        watch.every = max(1, math.ceil(settings.policy_steps / CHECKS_PER_ROUND))
        config = PPOConfig(seed=settings.seed, steps=settings.policy_steps, lora_r=lora_r, dtype=dtype,
                           learning_rate=settings.learning_rate, kl_coef=settings.kl_coef,
                           gradient_checkpointing=checkpointing, sharded=fit.sharded)
        random.Random(settings.seed).shuffle(train_prompts)
        planned = config.steps
        shared = share_with_nodes(store, reward.out_dir) if nodes is not None else None
        result = train("ppo", shared, policy_dir=base_path,
                       reward_model_dir=store.checkout(*shared) if shared else reward.out_dir,
                       prompts=train_prompts[:PPO_PROMPTS], config=config, out_dir=out_dir,
                       on_metrics=run.metrics_callback("ppo", 0.3, 0.95, planned), watch=watch, base=full)
        metrics = {f"reward_model/{k}": v for k, v in reward.metrics.items()}
    else:
        config = DPOConfig(seed=settings.seed, learning_rate=settings.learning_rate, beta=settings.kl_coef,
                           eval_fraction=HELD_OUT_SHARE, max_steps=settings.policy_steps, lora_r=lora_r,
                           dtype=dtype, gradient_checkpointing=checkpointing, sharded=fit.sharded)
        config.epochs = min(DPO_MAX_EPOCHS, math.ceil(settings.policy_steps / config.steps_per_epoch(len(decisive))))
        planned = config.planned_steps(len(decisive))
        watch.every = max(1, math.ceil(planned / CHECKS_PER_ROUND))
        result = train("dpo", policy_dir=base_path, pairs=decisive, config=config, out_dir=out_dir,
                       on_metrics=run.metrics_callback("dpo", 0.0, 0.95, planned), watch=watch, base=full)
        metrics = {}
    run.log(f"{settings.algorithm}: {_summary(result.metrics)}")
    report["policy"] = {"steps_planned": planned, "steps_run": int(result.metrics["steps"]),
                        "kept_step": result.report["kept_step"], "checks": result.report["checks"],
                        "stopped": result.report["stopped"]}
    report["watch"] = result.report
    gates += policy_gates(result.report)
    metrics |= {f"{settings.algorithm}/{k}": v for k, v in result.metrics.items()}
    return _publish(run, base_id, result, store, metrics, gates, report)


def _outcome(gates: list[Gate]) -> CheckpointStatus:
    """What a trained result becomes under the promotion setting."""
    promotion = get_settings().promotion
    if promotion == "immediate":
        return CheckpointStatus.current
    if not all(gate.passed for gate in gates):
        return CheckpointStatus.rejected
    return CheckpointStatus.candidate if promotion == "review" else CheckpointStatus.current


def _failed_gates(gates: list[Gate]) -> str:
    return "; ".join(f"{g.name} {g.value:.3g} (limit {g.limit})" if g.value is not None else f"{g.name}: {g.detail}"
                     for g in gates if not g.passed)


def _rejection(gates: list[Gate]) -> str:
    """A rejected round's error."""
    return f"rejected by its gates: {_failed_gates(gates)}; the current checkpoint is unchanged"


def _reject(run: RoundRun, gates: list[Gate], report: dict) -> RoundStatus:
    """End the round "rejected" with nothing to publish (no policy step, or none kept)."""
    reason = _rejection(gates)
    run.log(reason)
    if not run.finish(RoundStatus.rejected, reason, gates=[g.as_dict() for g in gates], report=report,
                      progress=1.0):
        raise RoundLost()
    return RoundStatus.rejected


def _publish(run: RoundRun, base_id: int, result: TrainResult, store: CheckpointStore, metrics: dict,
             gates: list[Gate], report: dict) -> RoundStatus:
    """Publish the verified result to the store, register it as its gates and the promotion
    setting say (candidate, current, or rejected) and close the round, in one transaction."""
    if run.should_stop():
        raise RoundLost()
    if result.out_dir is None:  # the watch kept nothing past the parent: nothing to publish
        return _reject(run, gates, report)
    content_hash = read_metadata(result.out_dir)["content_hash"]
    path = store.publish(result.out_dir)
    outcome = _outcome(gates)
    failed = _failed_gates(gates)
    status = RoundStatus.rejected if outcome == CheckpointStatus.rejected else RoundStatus.succeeded
    error = _rejection(gates) if status == RoundStatus.rejected else None
    reason = {CheckpointStatus.rejected: f"rejected by the gates of round {run.round_id}: {failed}",
              CheckpointStatus.candidate: f"passed the gates of round {run.round_id}; raters compare it blind "
                                          "with the current checkpoint",
              CheckpointStatus.current: f"made current by round {run.round_id} (promotion: {get_settings().promotion})"
                                        + (f"; failed gates: {failed}" if failed else "")}[outcome]
    run.log(reason)
    run.stop_heartbeat()
    with session_scope() as db:
        if not finish_round(db, run.round_id, run.worker, status, error, unless_cancelled=True, progress=1.0,
                            gates=[g.as_dict() for g in gates], report=report):
            raise RoundLost()
        checkpoint = add_checkpoint(db, path=path, name=Path(path).name, parent_id=base_id,
                                    content_hash=content_hash, metrics=metrics,
                                    status=CheckpointStatus.ready if outcome == CheckpointStatus.current else outcome,
                                    status_reason=reason)
        if outcome == CheckpointStatus.current:
            make_current(db, checkpoint)
        db.execute(update(TrainingRound).where(TrainingRound.id == run.round_id)
                   .values(produced_checkpoint_id=checkpoint.id))
    return status


def _summary(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in sorted(metrics.items()) if isinstance(v, (int, float)))
