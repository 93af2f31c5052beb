"""A round across several machines (`TUNELOOP_TRAIN_NODES` above 1): node 0 is the training worker,
each other machine runs `tuneloop train-node --node-rank K` (`serve`).

For each trainer run of such a round the training worker writes a `node_job` row, runs the job
as node 0 of a torchrun rendezvous it holds at `TUNELOOP_TRAIN_MASTER` (worker.training.launch),
and marks the row ended when its torchrun ends, whatever the outcome. Rank 0 (metrics, result,
the checkpoint's save) lives on node 0; the other nodes compute their share of each batch only.

A node agent joins each open job of a running round. It loads the job's models from its own
copies, as any worker does: the policy checkpoint through the checkpoint store and this machine's
cache, and PPO's reward model from the store, where node 0 puts it (`share_with_nodes`). It runs
the job under torchrun as node K, bound to its own life as node 0's is to the worker's
(worker.training.torchrun). Its ranks end with node 0's: a collective whose peer died fails, and
the agent stops its torchrun once the row is ended or the round no longer runs (cancelled,
failed). A job it cannot join fails at node 0, when the rendezvous times out.
"""

import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from app.checkpoints.store import CheckpointStore, checkpoint_store
from app.db import session_scope
from app.models import Checkpoint, NodeJob, RoundStatus, TrainingRound, utcnow
from app.settings import get_settings
from worker.checkpoint_models import model_ref
from worker.training.checkpoint_io import read_metadata
from worker.training.data import TrainingCancelled, TrainResult
from worker.training.job import job_json, parse_job, write_job
from worker.training.launch import Rendezvous, TrainingFailed, run_job, run_trainer

POLL_SECONDS = 1.0


def share_with_nodes(store: CheckpointStore, directory: Path) -> tuple[str, str]:
    """Put a model node 0 trained for the next job (PPO's reward model) where every node reaches it:
    its path in the checkpoint store and its content hash. From an object store `directory` moves
    into this machine's cache: load it from `store.checkout` after."""
    content_hash = read_metadata(directory)["content_hash"]
    return store.publish(directory), content_hash


def train_on_nodes(round_id: int, nodes: Rendezvous, checkpoint_id: int, reward_model: tuple[str, str] | None,
                   trainer: str, processes: int, job_dir: Path, *,
                   on_metrics: Callable[[int, dict[str, float]], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, **arguments: Any) -> TrainResult:
    """`run_trainer` as node 0 of `nodes`, the job open to the other nodes while it runs; they load
    checkpoint `checkpoint_id` as the policy and `reward_model` (path in the store, content hash)."""
    reward_model_path, reward_model_hash = reward_model or (None, None)
    with session_scope() as db:
        job = NodeJob(round_id=round_id, job=job_json(trainer, arguments), nodes=nodes.nodes, processes=processes,
                      master=nodes.master, rendezvous_timeout_seconds=nodes.timeout_seconds,
                      checkpoint_id=checkpoint_id, reward_model_path=reward_model_path,
                      reward_model_hash=reward_model_hash)
        db.add(job)
    try:
        return run_trainer(trainer, processes, job_dir, nodes=nodes, on_metrics=on_metrics, should_stop=should_stop,
                           **arguments)
    finally:
        with session_scope() as db:
            db.execute(update(NodeJob).where(NodeJob.id == job.id).values(ended_at=utcnow()))


def serve(node_rank: int) -> None:
    """Join every open job as node `node_rank`, one at a time, until interrupted."""
    store = checkpoint_store()
    jobs = get_settings().var_dir / "train-node"
    _say(f"node {node_rank}: waiting for training jobs")
    last = 0
    while True:
        with session_scope() as db:
            job = db.scalar(select(NodeJob).where(NodeJob.id > last, *_open()).order_by(NodeJob.id).limit(1))
        if job is None:
            time.sleep(POLL_SECONDS)
            continue
        last = job.id
        if node_rank >= job.nodes:
            _say(f"job {job.id} of round {job.round_id} runs on {job.nodes} nodes: none of rank {node_rank}")
            continue
        try:
            _join(job, node_rank, store, jobs / f"job-{job.id}")
        except Exception:  # noqa: BLE001 - node 0 fails the round; this node waits for the next job
            _say(f"job {job.id} of round {job.round_id} failed here (its log: {jobs / f'job-{job.id}'}):\n"
                 + traceback.format_exc(limit=5))


def _join(job: NodeJob, node_rank: int, store: CheckpointStore, job_dir: Path) -> None:
    trainer, arguments = parse_job(job.job)
    _say(f"job {job.id} of round {job.round_id}: {trainer} as node {node_rank} of {job.nodes}")
    with session_scope() as db:
        arguments["policy_dir"], arguments["base"] = model_ref(db, db.get(Checkpoint, job.checkpoint_id))
    if job.reward_model_path is not None:
        arguments["reward_model_dir"] = store.checkout(job.reward_model_path, job.reward_model_hash)
    arguments["out_dir"] = job_dir / "out"  # never written: rank 0, on node 0, saves
    write_job(job_dir, trainer, arguments)
    try:
        run_job(trainer, job_dir, job.processes, Rendezvous(job.nodes, job.master, job.rendezvous_timeout_seconds),
                node_rank, should_stop=_ended(job.id))
    except TrainingCancelled:
        _say(f"job {job.id}: node 0 ended it (the round was cancelled or failed); stopped here")
        return
    except TrainingFailed as error:
        _say(f"job {job.id}: {error} (its log: {job_dir})")
        return
    _say(f"job {job.id}: done")
    shutil.rmtree(job_dir, ignore_errors=True)


def _open() -> tuple:
    """A job the other nodes run: node 0 runs it still, for a round that runs."""
    return (NodeJob.ended_at.is_(None),
            NodeJob.round_id.in_(select(TrainingRound.id).where(TrainingRound.status == RoundStatus.running)))


def _ended(job_id: int) -> Callable[[], bool]:
    """Whether job `job_id` is no longer open, asked of the database at most every POLL_SECONDS."""
    asked = time.monotonic()

    def ended() -> bool:
        nonlocal asked
        if time.monotonic() - asked < POLL_SECONDS:
            return False
        asked = time.monotonic()
        with session_scope() as db:
            return db.scalar(select(NodeJob.id).where(NodeJob.id == job_id, *_open())) is None
    return ended


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
