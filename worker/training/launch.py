"""Run a trainer in this process, or on several processes that torchrun starts.

`run_trainer(name, processes, job_dir, **arguments)` is `TRAINERS[name](**arguments)`:
called here when `processes` is 1 and no `nodes` are given; otherwise the job is written
to `job_dir` (worker.training.job) and torchrun runs it on `processes` processes of this
machine, one per GPU, or CPU processes over gloo: alone (`--standalone`: a rendezvous
of its own on a free port), or as node 0 of `nodes` machines (a static rendezvous that
this machine holds at `nodes.master`; each other machine runs the same job with its own
node rank, `run_job`, started by worker.train_node). Rank 0 is always on this machine.
This process only watches: rank 0's metrics reach `on_metrics` as it writes them,
`should_stop()` ends the job, and a job that fails (a rank raised, or was killed, or a
node never joined) raises TrainingFailed with torchrun's account of the first failure.
A job that does not succeed leaves nothing at its `out_dir`.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.training.checkpoint_files import PARTIAL
from worker.training.data import TrainingCancelled, TrainResult
from worker.training.job import METRICS, TRAINERS, read_result, write_job
from worker.training.torchrun import LAUNCHER_PID

POLL_SECONDS = 0.2
# torchrun gives its ranks 30 s to stop after SIGTERM before it kills them.
STOP_SECONDS = 40
LOG = "torchrun.log"


class TrainingFailed(Exception):
    """A trainer on several processes ended without a result: what torchrun said of it."""


@dataclass(frozen=True)
class Rendezvous:
    """Where the machines of a job meet: node 0 listens at `master` (`host:port`) and waits
    `timeout_seconds` for all `nodes` to join."""

    nodes: int
    master: str
    timeout_seconds: int


def run_trainer(trainer: str, processes: int, job_dir: Path, *, nodes: Rendezvous | None = None,
                on_metrics: Callable[[int, dict[str, float]], None] | None = None,
                should_stop: Callable[[], bool] | None = None, **arguments: Any) -> TrainResult:
    if processes == 1 and nodes is None:
        return TRAINERS[trainer](**arguments, on_metrics=on_metrics, should_stop=should_stop)
    job_dir = Path(job_dir)
    write_job(job_dir, trainer, arguments)
    try:
        run_job(trainer, job_dir, processes, nodes, on_metrics=on_metrics, should_stop=should_stop)
        return read_result(job_dir)
    except BaseException:
        _remove_output(Path(arguments["out_dir"]))
        raise


def run_job(trainer: str, job_dir: Path, processes: int, nodes: Rendezvous | None = None, node_rank: int = 0, *,
            on_metrics: Callable[[int, dict[str, float]], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> None:
    """Run the `trainer` job written in `job_dir` under torchrun, on `processes` processes of this
    machine, as node `node_rank` of `nodes` when given, until it ends; raises as `run_trainer` says."""
    where = f"{processes} processes" if nodes is None else f"{nodes.nodes} nodes x {processes} processes"
    if nodes is None:
        rendezvous = ["--standalone"]
    else:
        host, _, port = nodes.master.rpartition(":")
        rendezvous = [f"--nnodes={nodes.nodes}", f"--node-rank={node_rank}", f"--master-addr={host}",
                      f"--master-port={port}", f"--rdzv-conf=timeout={nodes.timeout_seconds}"]
    # torchrun gives each rank one thread unless told otherwise; ranks on CPUs share the cores instead.
    threads = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // processes))}
    with (job_dir / LOG).open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker.training.torchrun", *rendezvous, f"--nproc-per-node={processes}",
             "-m", "worker.training.job", str(job_dir)],
            stdout=log, stderr=subprocess.STDOUT,
            env=threads | os.environ | {LAUNCHER_PID: str(os.getpid())}, start_new_session=True)
    relayed = 0
    try:
        while process.poll() is None:
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"{trainer} on {where} cancelled")
            relayed = _relay(job_dir / METRICS, relayed, on_metrics)
            time.sleep(POLL_SECONDS)
        _relay(job_dir / METRICS, relayed, on_metrics)
        if process.returncode != 0:
            raise TrainingFailed(f"{trainer} on {where} failed: "
                                 + first_failure((job_dir / LOG).read_text(errors="replace"), nodes))
    except BaseException:
        _stop(process)
        raise


def first_failure(log: str, nodes: Rendezvous | None = None) -> str:
    """torchrun's root cause of a failed job, in a line: which rank, and the last line of its error
    (the exception it raised, or the signal that killed it); or which nodes never joined."""
    _, found, cause = log.rpartition("Root Cause (first observed failure):")
    missing = re.search(r"waiting for clients\. (\d+)/(\d+) clients joined", log)
    if nodes is not None and not found and missing:  # node 0's static rendezvous timed out
        return (f"only {missing.group(1)} of {missing.group(2)} nodes joined the rendezvous at {nodes.master} "
                f"within {nodes.timeout_seconds} s (TUNELOOP_TRAIN_RENDEZVOUS_TIMEOUT_SECONDS); is "
                "`tuneloop train-node` running on every other node, and the master's port reachable?")
    if not found:  # torchrun itself failed
        return " ".join(log.strip().splitlines()[-1:]) or "torchrun exited without saying why"
    rank = re.search(r"^\s*rank\s*:\s*(.*)$", cause, flags=re.MULTILINE)
    error = [line.strip() for line in cause.partition("traceback")[2].splitlines()
             if line.strip() and not line.startswith("=")]
    return f"rank {rank.group(1) if rank else '?'}: {error[-1].lstrip(' :') if error else 'no error reported'}"


def _relay(metrics: Path, offset: int, on_metrics: Callable[[int, dict[str, float]], None] | None) -> int:
    """Hand the steps rank 0 wrote since `offset` to `on_metrics`; returns the new offset."""
    if on_metrics is None or not metrics.exists():
        return offset
    with metrics.open("rb") as stream:
        stream.seek(offset)
        written = stream.read()
    complete = written[: written.rfind(b"\n") + 1]  # a line still being written waits
    for line in complete.splitlines():
        step, values = json.loads(line)
        on_metrics(step, values)
    return offset + len(complete)


def _stop(process: subprocess.Popen) -> None:
    """End torchrun, which ends its ranks and waits for them; kill it if it will not."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()  # its ranks die with it (worker.training.torchrun)
            process.wait()


def _remove_output(out_dir: Path) -> None:
    """What a failed job wrote towards its checkpoint: the checkpoint, or its staging directory."""
    shutil.rmtree(out_dir, ignore_errors=True)
    for staging in out_dir.parent.glob(f".{out_dir.name}{PARTIAL}*"):
        shutil.rmtree(staging, ignore_errors=True)
