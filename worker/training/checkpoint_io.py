"""Writing checkpoints so that a directory at its final path is always complete.

A checkpoint is written to a hidden temporary sibling of its final path,
described by `tuneloop.json` (algorithm, config, metrics, parent, time, for
an adapter the content hash of the base it adapts, and a sha256 over every
other file), flushed to disk, loaded back once, and only
then renamed into place. A rename within one filesystem is atomic, so a crash
leaves at most a temporary directory, never a half checkpoint at the final
path. The metadata file's name and the content hash are in checkpoint_files, which loads
without torch.
"""

import json
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peft import PeftConfig
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from worker.training.checkpoint_files import METADATA_FILE, PARTIAL, CheckpointError, content_hash

ADAPTER_WEIGHTS = "adapter_model.safetensors"
# Checkpoints whose weights are a scalar-head classifier rather than a causal LM.
SEQUENCE_CLASSIFIER_ALGORITHMS = {"reward_model"}


def read_metadata(directory: Path) -> dict[str, Any]:
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {METADATA_FILE}")
    return json.loads(path.read_text())


def stored_content_hash(directory: Path) -> str:
    """The hash a checkpoint was published with, or, for a directory tuneloop did not write, computed."""
    path = Path(directory) / METADATA_FILE
    return read_metadata(directory)["content_hash"] if path.is_file() else content_hash(directory)


def verify_checkpoint(directory: Path, load_weights: bool = True) -> dict[str, Any]:
    """Check the metadata and content hash (and that the weights load); return the metadata.
    An adapter checkpoint's weights and config are read without its base."""
    metadata = read_metadata(directory)
    actual = content_hash(directory)
    if actual != metadata.get("content_hash"):
        raise CheckpointError(
            f"{directory}: content hash {actual} does not match {metadata.get('content_hash')}"
        )
    if load_weights and (Path(directory) / ADAPTER_WEIGHTS).is_file():
        try:
            PeftConfig.from_pretrained(directory)
            load_file(Path(directory) / ADAPTER_WEIGHTS)
        except Exception as error:
            raise CheckpointError(f"{directory}: its adapter does not load: {error}") from error
        if "content_hash" not in metadata.get("base", {}):
            raise CheckpointError(f"{directory}: an adapter that names no base model")
    elif load_weights:
        model_class = (
            AutoModelForSequenceClassification
            if metadata["algorithm"] in SEQUENCE_CLASSIFIER_ALGORITHMS
            else AutoModelForCausalLM
        )
        try:
            model_class.from_pretrained(directory)
        except Exception as error:
            raise CheckpointError(f"{directory} does not load: {error}") from error
    return metadata


def _fsync_tree(directory: Path) -> None:
    for path in [*directory.rglob("*"), directory]:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_checkpoint(
    out_dir: Path,
    write_files: Callable[[Path], None],
    *,
    algorithm: str,
    config: dict[str, Any],
    metrics: dict[str, float],
    parent: str | None,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Publish a checkpoint at `out_dir` in one step.

    `write_files(tmp_dir)` saves the model and tokenizer (e.g. with
    `save_pretrained`). Refuses to replace an existing directory: checkpoints
    are immutable once published.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"checkpoint {out_dir} already exists")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}{PARTIAL}{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
        write_files(staging)
        metadata = {
            "algorithm": algorithm,
            "config": config,
            "metrics": metrics,
            "parent": parent,
            "created_at": datetime.now(UTC).isoformat(),
            **(extra_metadata or {}),
            "content_hash": content_hash(staging),
        }
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True))
        _fsync_tree(staging)
        verify_checkpoint(staging)
        os.rename(staging, out_dir)
        _fsync_parent(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _fsync_parent(out_dir: Path) -> None:
    """Make the rename itself durable."""
    descriptor = os.open(out_dir.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
