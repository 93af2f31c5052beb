"""Build the small local base model once and register it as a checkpoint."""

import sys

from sqlalchemy import select

from app.checkpoints.service import register_checkpoint
from app.checkpoints.store import checkpoint_store
from app.db import session_scope
from app.models import Checkpoint
from worker.training.base_model import build_base_model
from worker.training.checkpoint_io import read_metadata


def build_and_register_base() -> Checkpoint:
    # Built beside what this process writes to the store (in it, when the store is a directory).
    path = (checkpoint_store().local_root / "base").resolve()
    print(f"building the base model in {path} (cached after the first time)...", file=sys.stderr)
    build_base_model(path)
    content_hash = read_metadata(path)["content_hash"]
    with session_scope() as db:
        existing = db.scalar(select(Checkpoint).where(Checkpoint.content_hash == content_hash)
                             .order_by(Checkpoint.id).limit(1))
        if existing is not None:
            print(f"base model already registered as v{existing.version}", file=sys.stderr)
            return existing
        checkpoint = register_checkpoint(db, path, name="base", content_hash=content_hash)
        print(f"registered the base model as v{checkpoint.version} ({checkpoint.status})", file=sys.stderr)
        return checkpoint
