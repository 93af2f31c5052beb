"""Checkpoints: registration, the one current checkpoint, promotion and rollback."""

from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.checkpoints.model_dir import inspect_model_dir
from app.checkpoints.store import checkpoint_store
from app.errors import Conflict, InvalidInput, NotFound
from app.models import (
    Checkpoint,
    CheckpointStatus,
    Item,
    ItemPurpose,
    ItemResponse,
    Lease,
    Sample,
    utcnow,
)


def current_checkpoint(db: Session) -> Checkpoint | None:
    return db.scalar(select(Checkpoint).where(Checkpoint.status == CheckpointStatus.current))


def under_review(db: Session) -> Checkpoint | None:
    """The candidate raters are comparing with the current checkpoint, if any (rounds make one at a time)."""
    return db.scalar(select(Checkpoint).where(Checkpoint.status == CheckpointStatus.candidate)
                     .order_by(Checkpoint.version.desc()).limit(1))


def list_checkpoints(db: Session) -> list[Checkpoint]:
    return list(db.scalars(select(Checkpoint).order_by(Checkpoint.version.desc())))


def get_checkpoint(db: Session, checkpoint_id: int) -> Checkpoint:
    checkpoint = db.get(Checkpoint, checkpoint_id)
    if checkpoint is None:
        raise NotFound(f"no checkpoint {checkpoint_id}")
    return checkpoint


def resolve_path(checkpoint: Checkpoint) -> Path:
    """The local directory to load a checkpoint from. Relative paths live in the checkpoint store
    (from an object store, this is the worker's verified copy: app.checkpoints.store); absolute
    ones were registered in place in a local store (by an operator, `tuneloop checkpoint
    register`). A relative path never leaves the store."""
    path = Path(checkpoint.path)
    if path.is_absolute():
        return path
    if ".." in path.parts:
        raise InvalidInput(f"checkpoint {checkpoint.id}: path {checkpoint.path!r} leaves the "
                           "checkpoint store", field="path")
    return checkpoint_store().checkout(checkpoint.path, checkpoint.content_hash)


def next_version(db: Session) -> int:
    return (db.scalar(select(func.max(Checkpoint.version))) or 0) + 1


def add_checkpoint(db: Session, *, path: str, name: str, parent_id: int | None,
                   content_hash: str = "", metrics: dict | None = None,
                   status: CheckpointStatus = CheckpointStatus.ready, status_reason: str = "") -> Checkpoint:
    if ".." in Path(path).parts:
        raise InvalidInput(f"checkpoint path {path!r} leaves the checkpoint store", field="path")
    checkpoint = Checkpoint(version=next_version(db), path=path, name=name, parent_id=parent_id,
                            content_hash=content_hash, metrics=metrics or {}, status=status,
                            status_reason=status_reason)
    db.add(checkpoint)
    db.flush()
    return checkpoint


def register_checkpoint(db: Session, path: Path, *, name: str = "", content_hash: str = "") -> Checkpoint:
    """Register a local model directory as a base checkpoint, once it passes the checks of
    app.checkpoints.model_dir (nothing is stored otherwise); current if none is. A local store
    registers it where it is, an object store a copy (app.checkpoints.store)."""
    path = path.expanduser().resolve()
    model = inspect_model_dir(path)
    stored, content_hash = checkpoint_store().register(path, content_hash)
    checkpoint = add_checkpoint(db, path=stored, name=name or path.name, parent_id=None,
                                content_hash=content_hash, metrics=model.as_metrics())
    if current_checkpoint(db) is None:
        make_current(db, checkpoint)
    return checkpoint


PROMOTABLE = (CheckpointStatus.candidate, CheckpointStatus.ready, CheckpointStatus.retired,
              CheckpointStatus.rejected)


def make_current(db: Session, checkpoint: Checkpoint, reason: str = "") -> None:
    """Promote (or roll back to) a checkpoint in one transaction.

    Rounds and the raters' review promote candidates; an admin may also promote a
    ready, retired or rejected checkpoint by hand. Generation picks the new one up
    on its next batch; unstarted training items sampled from other checkpoints are
    closed so raters judge the current model.
    """
    if checkpoint.status == CheckpointStatus.current:
        return
    if checkpoint.status not in PROMOTABLE:
        raise Conflict(f"checkpoint v{checkpoint.version} is {checkpoint.status}, not ready")
    if reason:
        checkpoint.status_reason = reason
    db.execute(update(Checkpoint).where(Checkpoint.status == CheckpointStatus.current)
               .values(status=CheckpointStatus.ready))
    db.flush()
    checkpoint.status = CheckpointStatus.current
    db.flush()
    _close_stale_training_items(db, checkpoint.id)


def _close_stale_training_items(db: Session, current_id: int) -> None:
    stale = (
        select(Item.id)
        .join(ItemResponse, ItemResponse.item_id == Item.id)
        .join(Sample, Sample.id == ItemResponse.sample_id)
        .where(Item.purpose == ItemPurpose.train, Item.done.is_(False), Item.answers == 0,
               Sample.checkpoint_id != current_id,
               ~select(Lease.id).where(Lease.item_id == Item.id, Lease.expires_at > utcnow())
               .exists())
    )
    # "done" closes the item for leasing; its answer count stays honest (zero).
    db.execute(update(Item).where(Item.id.in_(stale)).values(done=True))


def reject_checkpoint(db: Session, checkpoint: Checkpoint, reason: str) -> None:
    """Turn a candidate (or any checkpoint not current) down; items still waiting to compare it close."""
    if checkpoint.status == CheckpointStatus.current:
        raise Conflict(f"checkpoint v{checkpoint.version} is current; promote another one first")
    checkpoint.status, checkpoint.status_reason = CheckpointStatus.rejected, reason
    db.flush()
    waiting = (
        select(Item.id)
        .join(ItemResponse, ItemResponse.item_id == Item.id)
        .join(Sample, Sample.id == ItemResponse.sample_id)
        .where(Item.done.is_(False), Item.answers == 0, Sample.checkpoint_id == checkpoint.id)
    )
    db.execute(update(Item).where(Item.id.in_(waiting)).values(done=True))
