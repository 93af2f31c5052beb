"""One trainer run on every process torchrun starts: `... -m worker.training.job JOB_DIR`.

The launching process (worker.training.launch) and the ranks talk through files in
the job directory:

- `job.json`: the trainer's name and its arguments, written by the launcher;
- `metrics.jsonl`: a line `[step, metrics]` a step, appended by rank 0 as it trains;
- `result.json`: rank 0's TrainResult, once the trainer returned.

Arguments travel as JSON, not pickle: the directory lives in the checkpoint store,
and unpickling a file from there would run whatever code anyone who can write to
the store put in it.
"""

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record

from worker.training.data import PreferencePair, TrainResult, UnaryExample
from worker.training.distributed import current_ranks
from worker.training.dpo import DPOConfig, run_dpo
from worker.training.lora import ModelRef
from worker.training.ppo import PPOConfig, run_ppo
from worker.training.reward_model import RewardModelConfig, fit_reward_model
from worker.training.torchrun import AGENT_PID, die_with_parent
from worker.training.watch import WatchConfig

TRAINERS = {"reward_model": fit_reward_model, "dpo": run_dpo, "ppo": run_ppo}
JOB, METRICS, RESULT = "job.json", "metrics.jsonl", "result.json"
_ARGUMENT_TYPES = {cls.__name__: cls for cls in (PreferencePair, UnaryExample, ModelRef, WatchConfig,
                                                 RewardModelConfig, DPOConfig, PPOConfig)}


def job_json(trainer: str, arguments: dict[str, Any]) -> str:
    """The job as `job.json` holds it, and as node 0 hands it to the other nodes (worker.train_node)."""
    return json.dumps({"trainer": trainer, "arguments": _encode(arguments)})


def parse_job(text: str) -> tuple[str, dict[str, Any]]:
    job = json.loads(text, object_hook=_decode)
    return job["trainer"], job["arguments"]


def write_job(job_dir: Path, trainer: str, arguments: dict[str, Any]) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / JOB).write_text(job_json(trainer, arguments))


def read_job(job_dir: Path) -> tuple[str, dict[str, Any]]:
    return parse_job((job_dir / JOB).read_text())


def read_result(job_dir: Path) -> TrainResult:
    result = json.loads((job_dir / RESULT).read_text())
    return TrainResult(Path(result["out_dir"]) if result["out_dir"] else None, result["metrics"], result["report"])


@record  # a rank's exception goes into torchrun's report of the failure, which the launcher reads
def main() -> None:
    job_dir = Path(sys.argv[1])
    die_with_parent(int(os.environ[AGENT_PID]))
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    trainer, arguments = read_job(job_dir)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        if not current_ranks().main:
            TRAINERS[trainer](**arguments)
            return
        with (job_dir / METRICS).open("a") as stream:
            def on_metrics(step: int, metrics: dict[str, float]) -> None:
                stream.write(json.dumps([step, metrics]) + "\n")
                stream.flush()

            result = TRAINERS[trainer](**arguments, on_metrics=on_metrics)
        staging = job_dir / f".{RESULT}"
        staging.write_text(json.dumps({"out_dir": str(result.out_dir) if result.out_dir else None,
                                       "metrics": result.metrics, "report": result.report}))
        staging.rename(job_dir / RESULT)
    finally:
        dist.destroy_process_group()


def _encode(value: Any) -> Any:
    """`value` as JSON that `_decode` turns back into it: dataclasses, paths and tuples marked."""
    if dataclasses.is_dataclass(value):
        return {"__dataclass__": type(value).__name__,
                "fields": {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, Path):
        return {"__path__": str(value)}
    if isinstance(value, tuple):  # prompts and token ids are tuples: pairs key dictionaries
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {key: _encode(v) for key, v in value.items()}
    return value


def _decode(obj: dict[str, Any]) -> Any:
    if "__dataclass__" in obj:
        return _ARGUMENT_TYPES[obj["__dataclass__"]](**obj["fields"])
    if "__path__" in obj:
        return Path(obj["__path__"])
    if "__tuple__" in obj:
        return tuple(obj["__tuple__"])
    return obj


if __name__ == "__main__":
    main()
