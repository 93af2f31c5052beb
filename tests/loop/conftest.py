"""Fixtures for the closed loop: a tiny base model, prompts, tokens, a real Celery worker."""

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.checkpoints.service import register_checkpoint
from app.prompts.service import NewPrompt, add_prompts
from app.settings import get_settings
from app.users.service import create_token
from tests.factories import make_user
from worker.training.base_model import BaseModelConfig, build_base_model
from worker.training.checkpoint_io import read_metadata
from worker.training.corpus import builtin_prompts

# Small enough to build in seconds; still a real pretrained GPT-2.
TINY_BASE = BaseModelConfig(n_layer=2, n_head=2, n_embd=64, examples=4000, steps=60, batch_size=16)


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory) -> Path:
    return build_base_model(tmp_path_factory.mktemp("models") / "tiny-base", TINY_BASE)


@pytest.fixture
def loop_state(db, tiny_base_dir) -> dict:
    """Base checkpoint current, 48 prompts, an admin and two raters with API tokens."""
    store = get_settings().checkpoint_dir
    shutil.rmtree(store, ignore_errors=True)
    base = store / "base"
    shutil.copytree(tiny_base_dir, base)
    checkpoint = register_checkpoint(db, base, name="base", content_hash=read_metadata(base)["content_hash"])
    return {"base_id": checkpoint.id, "tokens": prompts_and_raters(db), "store": store}


def prompts_and_raters(db) -> dict[str, str]:
    """48 prompts, an admin and two raters: their API tokens by name."""
    add_prompts(db, [NewPrompt(text=p.text, tags=[p.topic], source="builtin") for p in builtin_prompts()[:48]])
    tokens = {name: create_token(db, make_user(db, name, admin=name == "admin"))
              for name in ("admin", "ann", "bob")}
    db.commit()
    return tokens


@pytest.fixture
def start_worker() -> Iterator:
    """Start `tuneloop worker` processes (extra TUNELOOP_* settings as keywords); every one is
    killed at the end."""
    processes: list[subprocess.Popen] = []

    def start(queues: str = "generate,train", beat: bool = True, **settings: str) -> subprocess.Popen:
        env = dict(os.environ) | {"TUNELOOP_POOL_TARGET": "16"} | {
            f"TUNELOOP_{name.upper()}": str(value) for name, value in settings.items()}
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--queues", queues,
             "--beat" if beat else "--no-beat"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def api(live_server: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"{live_server}/api/v1", headers={"Authorization": f"Bearer {token}"},
                        timeout=30)
