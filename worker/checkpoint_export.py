"""A checkpoint out of tuneloop: a standalone Hugging Face model directory, tokenizer and chat
template included, that `AutoModelForCausalLM` and `AutoTokenizer` load with nothing else.

A checkpoint of tuneloop's own is first checked against the content hash it
was published with. A full checkpoint is copied; an adapter checkpoint is
loaded on its base and merged into it. Either way the result is written
beside the target and renamed into place, so the target is complete or absent.
"""

import shutil
import uuid
from pathlib import Path

from transformers import AutoTokenizer

from worker.training.checkpoint_io import METADATA_FILE, CheckpointError, verify_checkpoint
from worker.training.lora import ModelRef, is_adapter, load_causal_lm, merged_model


def export_checkpoint(source: Path, target: Path, base: ModelRef | None = None) -> Path:
    """`base`: the full model under `source` (worker.checkpoint_models.model_ref), needed for an adapter."""
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists; export writes a new directory")
    adapter = is_adapter(source)
    if not adapter and not (Path(source) / "config.json").is_file():
        raise ValueError(f"{source} is not a model directory")
    if (Path(source) / METADATA_FILE).is_file():
        try:
            verify_checkpoint(source, load_weights=False)
        except CheckpointError as error:
            raise ValueError(f"checkpoint at {source} does not match what was published: {error}") from None
    staging = target.with_name(f".{target.name}.export-{uuid.uuid4().hex[:8]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if adapter:
            merged_model(load_causal_lm(source, base)).save_pretrained(staging)
            AutoTokenizer.from_pretrained(source).save_pretrained(staging)
        else:
            shutil.copytree(source, staging)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
