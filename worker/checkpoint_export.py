"""A checkpoint out of tuneloop: a standalone Hugging Face model directory, tokenizer and chat
template included, that `AutoModelForCausalLM` and `AutoTokenizer` load with nothing else.

Rounds publish full model directories (LoRA adapters are merged before saving),
so exporting is a verified copy: a checkpoint of tuneloop's own is checked
against the content hash it was published with, then copied beside the target
and renamed into place, so the target is complete or absent.
"""

import shutil
import uuid
from pathlib import Path

from worker.training.checkpoint_io import METADATA_FILE, CheckpointError, verify_checkpoint


def export_checkpoint(source: Path, target: Path) -> Path:
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists; export writes a new directory")
    if not (Path(source) / "config.json").is_file():
        raise ValueError(f"{source} is not a model directory")
    if (Path(source) / METADATA_FILE).is_file():
        try:
            verify_checkpoint(source, load_weights=False)
        except CheckpointError as error:
            raise ValueError(f"checkpoint at {source} does not match what was published: {error}") from None
    staging = target.with_name(f".{target.name}.export-{uuid.uuid4().hex[:8]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(source, staging)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
