"""What a checkpoint directory is made of, read without torch: the names tuneloop gives its
files, its content hash, the error a bad one raises, and the sweep of staging a killed writer left. The checkpoint store
(app.checkpoints.store) needs these too, on the web side's side of the torch boundary."""

import hashlib
import shutil
import time
from pathlib import Path

METADATA_FILE = "tuneloop.json"
# Marks a staging directory: `.<name>.partial-<random>` beside the checkpoint it becomes.
PARTIAL = ".partial-"


class CheckpointError(Exception):
    """A checkpoint directory is incomplete, altered, or does not load."""


def content_hash(directory: Path) -> str:
    """sha256 over every file except the metadata, by relative path then bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if relative == METADATA_FILE:
            continue
        digest.update(relative.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def sweep_partial(root: Path, older_than_seconds: float = 3600.0) -> list[Path]:
    """Remove staging directories a killed writer left under `root` (any depth).

    A writer that dies (SIGKILL, power loss) cannot clean up after itself; its
    staging directory was never visible as a checkpoint, only disk use. Ones
    touched within `older_than_seconds` are left alone: another worker may be
    writing them now. Returns what was removed."""
    cutoff = time.time() - older_than_seconds
    removed = []
    for staging in list(Path(root).rglob(f".*{PARTIAL}*")):
        if staging.is_dir() and staging.stat().st_mtime < cutoff:
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
    return removed
