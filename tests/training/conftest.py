"""Shared fixtures: a tiny base model (a few seconds to build), rule-labelled pairs, a torchrun job's processes."""

import os
import random
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
import transformers

from simulation.rules import prefer
from worker.training import BaseModelConfig, PreferencePair, build_base_model
from worker.training.corpus import builtin_prompts, sample_response

transformers.logging.set_verbosity_error()
# These models are tiny: one thread loses little on an idle machine, and on a
# shared one (CI runners, other test processes) two threads spin-waiting on
# each other's barriers made the suite 5-15x slower (measured here).
torch.set_num_threads(1)

# Big enough to learn the corpus's shape, small enough to build in ~5 s on 2 cores.
TINY_BASE = BaseModelConfig(
    vocab_size=512, n_layer=2, n_head=2, n_embd=64, examples=3000, steps=120, warmup_steps=10
)


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory) -> Path:
    return build_base_model(tmp_path_factory.mktemp("models") / "tiny-base", TINY_BASE)


def corpus_pairs(rule: str, count: int, seed: int = 0) -> list[PreferencePair]:
    """Pairs of corpus responses to built-in prompts, labelled by a rule (ties kept)."""
    rng = random.Random(seed)
    pairs = []
    for prompt in builtin_prompts(seed)[:count]:
        a, b = sample_response(prompt.topic, rng), sample_response(prompt.topic, rng)
        answer = prefer(rule, prompt.text, a, b)
        chosen, rejected = (b, a) if answer == "b" else (a, b)
        pairs.append(PreferencePair(prompt.text, chosen, rejected, tie=answer == "tie"))
    return pairs


@pytest.fixture(scope="session")
def colour_pairs() -> list[PreferencePair]:
    return corpus_pairs("colour", 96)


def job_processes(job_dir: Path) -> dict[int, int]:
    """The processes of a torchrun job: {rank: pid} of its ranks, and the agent's pid at -1."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:  # it ended while we looked
            continue
        if str(job_dir).encode() in command:
            rank = next((v for k, _, v in (e.partition(b"=") for e in environment) if k == b"RANK"), b"-1")
            found[int(rank)] = int(pid)
    return found
