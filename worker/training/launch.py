"""Run a trainer in this process, or on several processes that torchrun starts.

`run_trainer(name, processes, job_dir, **arguments)` is `TRAINERS[name](**arguments)`:
called here when `processes` is 1; otherwise the job is written to `job_dir`
(worker.training.job) and torchrun runs it on `processes` processes of this
machine (`--standalone`: a rendezvous of its own on a free port), one per GPU, or
CPU processes over gloo. This process only watches: rank 0's metrics reach
`on_metrics` as it writes them, `should_stop()` ends the job, and a job that
fails (a rank raised, or was killed) raises TrainingFailed with torchrun's
account of the first failure. A job that does not succeed leaves nothing at
its `out_dir`.
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


def run_trainer(trainer: str, processes: int, job_dir: Path, *,
                on_metrics: Callable[[int, dict[str, float]], None] | None = None,
                should_stop: Callable[[], bool] | None = None, **arguments: Any) -> TrainResult:
    if processes == 1:
        return TRAINERS[trainer](**arguments, on_metrics=on_metrics, should_stop=should_stop)
    job_dir = Path(job_dir)
    write_job(job_dir, trainer, arguments)
    # torchrun gives each rank one thread unless told otherwise; ranks on CPUs share the cores instead.
    threads = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // processes))}
    with (job_dir / LOG).open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker.training.torchrun", "--standalone", f"--nproc-per-node={processes}",
             "-m", "worker.training.job", str(job_dir)],
            stdout=log, stderr=subprocess.STDOUT,
            env=threads | os.environ | {LAUNCHER_PID: str(os.getpid())}, start_new_session=True)
    relayed = 0
    try:
        while process.poll() is None:
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"{trainer} on {processes} processes cancelled")
            relayed = _relay(job_dir / METRICS, relayed, on_metrics)
            time.sleep(POLL_SECONDS)
        _relay(job_dir / METRICS, relayed, on_metrics)
        if process.returncode != 0:
            raise TrainingFailed(f"{trainer} on {processes} processes failed: "
                                 + first_failure((job_dir / LOG).read_text(errors="replace")))
        return read_result(job_dir)
    except BaseException:
        _stop(process)
        _remove_output(Path(arguments["out_dir"]))
        raise


def first_failure(log: str) -> str:
    """torchrun's root cause of a failed job, in a line: which rank, and the last line of its error
    (the exception it raised, or the signal that killed it)."""
    _, found, cause = log.rpartition("Root Cause (first observed failure):")
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
