"""From a checkpoint to what loads it: its directory and the full model under it.

A LoRA round publishes an adapter whose `tuneloop.json` names the full model
it adapts by content hash (worker.training.lora); the full model is the
registered checkpoint with that hash. A full checkpoint is its own base; one
registered without a hash (an operator's directory) gets it computed and
stored the first time a worker needs it, so that adapters trained on it can
name it.
"""

from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.checkpoints.service import resolve_path
from app.models import Checkpoint
from worker.training.checkpoint_io import CheckpointError, read_metadata, stored_content_hash
from worker.training.lora import ModelRef, is_adapter


def model_ref(db: Session, checkpoint: Checkpoint) -> tuple[Path, ModelRef]:
    """A checkpoint's directory, and the full model under it (itself unless it is an adapter);
    `checkpoint` may be a row another session loaded."""
    path = resolve_path(checkpoint)
    if not is_adapter(path):
        content_hash = checkpoint.content_hash
        if not content_hash:  # by statement: `checkpoint` may belong to another session
            content_hash = stored_content_hash(path)
            db.execute(update(Checkpoint).where(Checkpoint.id == checkpoint.id).values(content_hash=content_hash))
        return path, ModelRef(path, content_hash)
    wanted = read_metadata(path).get("base", {}).get("content_hash", "")
    base = db.scalar(select(Checkpoint).where(Checkpoint.content_hash == wanted).order_by(Checkpoint.id).limit(1))
    if not wanted or base is None:
        raise CheckpointError(f"checkpoint v{checkpoint.version} is an adapter on a base model (sha256 "
                              f"{wanted[:12] or '?'}) that no registered checkpoint holds")
    return path, ModelRef(resolve_path(base), wanted)
