"""What a checkpoint directory is made of, read without torch: the names tuneloop gives its
files, its content hash, and the error a bad one raises. The checkpoint store
(app.checkpoints.store) needs these too, on the web side's side of the torch boundary."""

import hashlib
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
