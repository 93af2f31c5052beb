"""The loop with its checkpoints in an object store (moto's S3 server, over HTTP): the base copied
in by `tuneloop checkpoint register`, a LoRA round trained and published there by one worker, the
adapter sampled by a generation worker with a cache of its own, and exported by a third process."""

import json
import os
import random
import subprocess
import sys

import fsspec
import pytest
from sqlalchemy import select
from transformers import AutoModelForCausalLM

from app.checkpoints.store import MANIFEST
from app.models import Checkpoint
from tests.loop.conftest import prompts_and_raters
from tests.loop.test_end_to_end import open_items_from, rate_and_run_round
from tests.services import wait_until
from worker.training.checkpoint_files import PARTIAL, content_hash

pytestmark = pytest.mark.slow


def cli(*args: str, **settings: str) -> subprocess.CompletedProcess:
    env = dict(os.environ) | {f"TUNELOOP_{name.upper()}": value for name, value in settings.items()}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True,
                          timeout=180)


def test_a_lora_round_published_to_the_object_store_generates_elsewhere_and_exports(
        db, s3_store, tiny_base_dir, live_server, start_worker, tmp_path):
    registered = cli("checkpoint", "register", str(tiny_base_dir), "--name", "base")
    assert registered.returncode == 0, registered.stderr
    base = db.scalar(select(Checkpoint))
    assert base.path == tiny_base_dir.name and base.status == "current"
    assert base.content_hash == content_hash(tiny_base_dir)
    loop_state = {"base_id": base.id, "tokens": prompts_and_raters(db)}

    # Every worker keeps its own cache (TUNELOOP_VAR_DIR): what the generation worker samples, it
    # downloaded from the store.
    caches = {name: tmp_path / name / "checkpoint-cache" / "by-hash" for name in ("train", "generate", "export")}
    start_worker(queues="train", beat=False, var_dir=str(tmp_path / "train"), promotion="immediate")
    start_worker(queues="generate", beat=True, var_dir=str(tmp_path / "generate"), pool_target=64)
    wait_until(lambda: open_items_from(db, base.id) >= 64, 120, "the pool to fill from the stored base")
    assert [p.name for p in caches["generate"].iterdir()] == [base.content_hash]

    result = rate_and_run_round(db, live_server, loop_state, random.Random(0),
                                {"algorithm": "dpo", "policy_steps": 8, "lora_r": 4})
    assert result["status"] == "succeeded", (result["error"], result["gates"])
    db.expire_all()
    produced = db.get(Checkpoint, result["produced_checkpoint_id"])
    assert produced.status == "current" and produced.path == f"round-{result['id']}"

    # Published whole, manifest and all, nothing left staged; the adapter names its base by hash.
    fs, root = fsspec.core.url_to_fs(s3_store, use_listings_cache=False)
    stored = {os.path.relpath(path, root) for path in fs.find(root)}
    assert not any(PARTIAL in name for name in stored)
    manifest = json.loads(fs.cat_file(f"{root}/{produced.path}/{MANIFEST}"))
    assert manifest["content_hash"] == produced.content_hash
    assert {f"{produced.path}/{name}" for name in [*manifest["files"], MANIFEST]} == {
        name for name in stored if name.startswith(f"{produced.path}/")}
    assert "adapter_model.safetensors" in manifest["files"] and "model.safetensors" not in manifest["files"]
    adapter_metadata = json.loads(fs.cat_file(f"{root}/{produced.path}/tuneloop.json"))
    assert adapter_metadata["base"] == {"content_hash": base.content_hash}
    # The training worker loaded the base from the store and keeps what it published.
    assert {p.name for p in caches["train"].iterdir()} == {base.content_hash, produced.content_hash}

    # The generation worker samples the new checkpoint: its adapter, downloaded, on the cached base.
    wait_until(lambda: open_items_from(db, produced.id) > 0, 120, "items from the new checkpoint")
    assert {p.name for p in caches["generate"].iterdir()} == {base.content_hash, produced.content_hash}

    # Exported from the store by a process with nothing cached: the adapter merged into a standalone model.
    exported = tmp_path / "exported"
    result = cli("checkpoint", "export", str(produced.id), str(exported), var_dir=str(tmp_path / "export"))
    assert result.returncode == 0, result.stderr
    assert not (exported / "adapter_config.json").exists()
    assert AutoModelForCausalLM.from_pretrained(exported).num_parameters() > 0
    assert {p.name for p in caches["export"].iterdir()} == {base.content_hash, produced.content_hash}
