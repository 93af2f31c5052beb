"""Where checkpoints live: a local (or shared) directory, or an object store such as `s3://bucket/prefix`.

`TUNELOOP_CHECKPOINT_DIR` names either, and `checkpoint_store()` returns the one it names. A
checkpoint's row names it by its path in the store (`round-3`), or, registered in place in a
directory, by an absolute path (app.checkpoints.service.resolve_path).

A directory (`LocalStore`): a worker writes a checkpoint where it will live, publishing it with an
atomic rename (worker.training.checkpoint_io), and every process loads it where it lies.

An object store (`ObjectStore`, through fsspec; s3fs takes credentials, region and, for MinIO and
the like, `AWS_ENDPOINT_URL` from the standard AWS variables) has no rename. A worker writes the
checkpoint on its own disk, under `<TUNELOOP_VAR_DIR>/checkpoint-cache/`, then publishes it:

1. its files are uploaded under a staging prefix, `.round-3.partial-<random>/`;
2. copied, server side, to `round-3/`;
3. `tuneloop-manifest.json` is written there, last: every file's size and sha256, and the
   checkpoint's content hash;
4. the listing is checked against the manifest; only then is the checkpoint registered.

A prefix without its manifest is not a checkpoint: nothing loads it, and its name is not reused.
Workers load checkpoints from a cache of verified copies,
`<TUNELOOP_VAR_DIR>/checkpoint-cache/by-hash/<content hash>/`: a checkpoint is downloaded once per
machine into a staging directory, checked file by file against its manifest and as a whole against
its content hash, and only then renamed into place, so a partial or altered download is never used.
What a worker publishes enters its own cache as it is.
"""

import hashlib
import json
import os
import posixpath
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import fsspec

from app.settings import get_settings
from worker.training.checkpoint_files import PARTIAL, CheckpointError, content_hash, sweep_partial

MANIFEST = "tuneloop-manifest.json"


def unused_name(name: str, taken: Callable[[str], bool]) -> str:
    """`name`, or `name-2`, `name-3`... when it is taken: a store another database's rounds wrote to
    (round ids start again at 1) keeps what it holds, as published checkpoints never change."""
    candidate, n = name, 1
    while taken(candidate):
        n += 1
        candidate = f"{name}-{n}"
    return candidate


class LocalStore:
    """Checkpoints in a directory every worker reaches, loaded where they lie."""

    def __init__(self, root: Path):
        self.root = root
        # Where this process writes new checkpoints: the store itself.
        self.local_root = root.resolve()

    def new_local_dir(self, name: str) -> Path:
        """Where to write a new checkpoint (or a round's scratch) called `name`, or a free variant of it."""
        return self.local_root / unused_name(name, lambda candidate: (self.local_root / candidate).exists())

    def publish(self, directory: Path) -> str:
        """A checkpoint written (and renamed into place) under `new_local_dir`: its path in the store."""
        return directory.relative_to(self.local_root).as_posix()

    def register(self, directory: Path, known_hash: str) -> tuple[str, str]:
        """An operator's model directory is registered where it is: its row's path and content hash
        (as given; a worker computes it when first needed)."""
        return str(directory), known_hash

    def checkout(self, path: str, known_hash: str) -> Path:
        """The local directory holding the checkpoint at `path` in the store."""
        return self.root / path

    def sweep_staging(self, older_than_seconds: float = 3600.0) -> list[str]:
        """Remove the staging directories killed writers left in the store; returns what was removed."""
        return [str(path) for path in sweep_partial(self.local_root, older_than_seconds)]


class ObjectStore:
    """Checkpoints in an object store (an fsspec URL), published with a manifest written last and
    loaded from a local cache of verified copies keyed by content hash."""

    def __init__(self, url: str, local_root: Path):
        self.url = url.rstrip("/")
        # Listings are never cached: other workers publish while this one runs.
        self.fs, root = fsspec.core.url_to_fs(self.url, use_listings_cache=False)
        self.root = root.rstrip("/")
        self.local_root = local_root.resolve()
        self.cache = self.local_root / "by-hash"

    def _remote(self, name: str) -> str:
        return f"{self.root}/{name}"

    def new_local_dir(self, name: str) -> Path:
        """Where to write a new checkpoint called `name` (or a free variant, here and in the store)
        before `publish` uploads it."""
        return self.local_root / unused_name(name, lambda candidate: (self.local_root / candidate).exists()
                                             or self.fs.exists(self._remote(candidate)))

    def publish(self, directory: Path) -> str:
        """Upload a checkpoint written under `new_local_dir`, to the same path in the store (as a
        directory store keeps it); it then moves into this worker's cache. Returns its path in the store."""
        stored, digest = self._upload(directory, directory.relative_to(self.local_root).as_posix())
        cached = self.cache / digest
        self.cache.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(directory, cached)
        except OSError:  # the cache holds this content already
            shutil.rmtree(directory)
        return stored

    def register(self, directory: Path, known_hash: str) -> tuple[str, str]:
        """Copy an operator's model directory into the store: its row's path and content hash."""
        return self._upload(directory, directory.name)

    def checkout(self, path: str, known_hash: str) -> Path:
        """The verified local copy of the checkpoint at `path`, downloaded unless the cache holds
        its content (`known_hash`, its row's content hash, or '' to read it from the manifest)."""
        if known_hash and (self.cache / known_hash).is_dir():
            return self.cache / known_hash
        manifest = self._manifest(path)
        if known_hash and manifest["content_hash"] != known_hash:
            raise CheckpointError(f"{self.url}/{path}: its manifest says content hash {manifest['content_hash']}, "
                                  f"its row {known_hash}")
        cached = self.cache / manifest["content_hash"]
        if not cached.is_dir():
            self._download(path, manifest, cached)
        return cached

    def sweep_staging(self, older_than_seconds: float = 3600.0) -> list[str]:
        """Remove what killed writers left half-written: staging directories in this worker's cache
        and staging prefixes in the store (none written to within `older_than_seconds`: another
        worker may be uploading); returns what was removed."""
        removed = [str(path) for path in sweep_partial(self.local_root, older_than_seconds)]
        if not self.fs.exists(self.root):
            return removed
        cutoff = time.time() - older_than_seconds
        for prefix in self.fs.ls(self.root, detail=False):
            name = posixpath.basename(prefix.rstrip("/"))
            if not (name.startswith(".") and PARTIAL in name):
                continue
            if all(self.fs.modified(path).timestamp() < cutoff for path in self.fs.find(prefix)):
                self.fs.rm(prefix, recursive=True)
                removed.append(f"{self.url}/{name}")
        return removed

    def _upload(self, directory: Path, name: str) -> tuple[str, str]:
        files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
        manifest = {"content_hash": content_hash(directory),
                    "files": {name: {"size": (directory / name).stat().st_size, "sha256": _sha256(directory / name)}
                              for name in files}}
        staging = self._remote(f".{directory.name}{PARTIAL}{uuid.uuid4().hex[:8]}")
        try:
            self.fs.put([str(directory / name) for name in files], [f"{staging}/{name}" for name in files])
            stored = unused_name(name, lambda candidate: self.fs.exists(self._remote(candidate)))
            final = self._remote(stored)
            self.fs.copy([f"{staging}/{name}" for name in files], [f"{final}/{name}" for name in files])
            self.fs.pipe_file(f"{final}/{MANIFEST}", json.dumps(manifest, indent=2, sort_keys=True).encode())
        finally:
            if self.fs.exists(staging):
                self.fs.rm(staging, recursive=True)
        self._check_listing(stored, manifest)
        return stored, manifest["content_hash"]

    def _check_listing(self, stored: str, manifest: dict) -> None:
        """The store lists exactly what was uploaded, and hands the manifest back as written."""
        final = self._remote(stored)
        listed = {posixpath.relpath(path, final): info["size"]
                  for path, info in self.fs.find(final, detail=True).items()}
        expected = {name: entry["size"] for name, entry in manifest["files"].items()}
        if {name: size for name, size in listed.items() if name != MANIFEST} != expected \
                or self._manifest(stored) != manifest:
            raise CheckpointError(f"{self.url}/{stored}: the store does not hold what was uploaded")

    def _manifest(self, path: str) -> dict:
        try:
            return json.loads(self.fs.cat_file(f"{self._remote(path)}/{MANIFEST}"))
        except FileNotFoundError:
            raise CheckpointError(f"{self.url}/{path} has no {MANIFEST}: it is no published checkpoint "
                                  "(a publish that did not finish, or files put there by hand)") from None

    def _download(self, path: str, manifest: dict, cached: Path) -> None:
        staging = cached.with_name(f".{cached.name}{PARTIAL}{uuid.uuid4().hex[:8]}")
        files = manifest["files"]
        try:
            for name in files:
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
            self.fs.get([f"{self._remote(path)}/{name}" for name in files], [str(staging / name) for name in files])
            for name, entry in files.items():
                if _sha256(staging / name) != entry["sha256"]:
                    raise CheckpointError(f"{self.url}/{path}/{name} does not match the sha256 of its manifest")
            if content_hash(staging) != manifest["content_hash"]:
                raise CheckpointError(f"{self.url}/{path} does not match the content hash of its manifest")
            try:
                os.rename(staging, cached)
            except OSError:
                if not cached.is_dir():
                    raise
                # Another process verified the same content first: its copy serves.
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


CheckpointStore = LocalStore | ObjectStore


def checkpoint_store() -> CheckpointStore:
    """The store `TUNELOOP_CHECKPOINT_DIR` names: a Path is a directory, a string a URL (app.settings)."""
    settings = get_settings()
    if isinstance(settings.checkpoint_dir, Path):
        return LocalStore(settings.checkpoint_dir)
    return ObjectStore(settings.checkpoint_dir, settings.var_dir / "checkpoint-cache")
