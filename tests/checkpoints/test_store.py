"""An object-store checkpoint store (app.checkpoints.store) against a real S3 server: publishing is
all or nothing, workers load verified copies from a cache keyed by content hash."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest

from app.checkpoints.store import MANIFEST, ObjectStore, checkpoint_store
from tests.services import wait_until
from worker.training.checkpoint_files import PARTIAL, CheckpointError, content_hash


def write_checkpoint_files(directory: Path, files: int = 3, size: int = 4096) -> str:
    """A checkpoint as the store sees one: files in folders, and its content hash."""
    (directory / "tokenizer").mkdir(parents=True)
    (directory / "config.json").write_text('{"model_type": "gpt2"}')
    for n in range(files):
        (directory / f"shard-{n}.bin").write_bytes(os.urandom(size))
    (directory / "tokenizer" / "vocab.json").write_text('{"a": 0}')
    return content_hash(directory)


def objects(url: str) -> list[str]:
    fs, root = fsspec.core.url_to_fs(url, use_listings_cache=False)
    return sorted(os.path.relpath(path, root) for path in fs.find(root))


def test_a_published_checkpoint_loads_on_another_machine_and_a_second_load_downloads_nothing(s3_store, tmp_path):
    store = checkpoint_store()
    written = store.new_local_dir("round-1")
    digest = write_checkpoint_files(written)
    files = sorted(p.relative_to(written).as_posix() for p in written.rglob("*") if p.is_file())

    assert store.publish(written) == "round-1"
    assert objects(s3_store) == sorted(f"round-1/{name}" for name in [*files, MANIFEST])
    # The publisher's own copy is its cache entry: it loads without a download.
    assert store.checkout("round-1", digest) == store.cache / digest and not written.exists()

    elsewhere = ObjectStore(s3_store, tmp_path / "other-machine")
    local = elsewhere.checkout("round-1", digest)
    assert local == elsewhere.cache / digest
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == files
    assert content_hash(local) == digest and not (local / MANIFEST).exists()
    # With the store emptied, the same checkpoint still loads: the second load downloaded nothing.
    elsewhere.fs.rm(elsewhere.root, recursive=True)
    assert elsewhere.checkout("round-1", digest) == local and content_hash(local) == digest


def test_names_the_store_holds_are_not_reused(s3_store, tmp_path):
    """Rounds of another database (ids start again at 1) wrote round-1: the next round-1 is round-1-2."""
    first, second = ObjectStore(s3_store, tmp_path / "a"), ObjectStore(s3_store, tmp_path / "b")
    write_checkpoint_files(written := first.new_local_dir("round-1"))
    assert first.publish(written) == "round-1"
    again = second.new_local_dir("round-1")
    assert again.name == "round-1-2"
    write_checkpoint_files(again)
    assert second.publish(again) == "round-1-2"


@pytest.mark.parametrize("damage", ["altered", "truncated"])
def test_a_damaged_object_is_refused_and_never_cached(s3_store, tmp_path, damage):
    store = checkpoint_store()
    digest = write_checkpoint_files(written := store.new_local_dir("round-1"))
    store.publish(written)
    shard = f"{store.root}/round-1/shard-1.bin"
    data = store.fs.cat_file(shard)
    store.fs.pipe_file(shard, bytes([data[0] ^ 1]) + data[1:] if damage == "altered" else data[:100])

    elsewhere = ObjectStore(s3_store, tmp_path / "other-machine")
    with pytest.raises(CheckpointError, match="round-1/shard-1.bin does not match the sha256 of its manifest"):
        elsewhere.checkout("round-1", digest)
    assert list(elsewhere.cache.iterdir()) == []  # neither the copy nor its staging directory


def test_a_publish_killed_midway_leaves_nothing_the_loader_accepts(s3_store, tmp_path):
    store = checkpoint_store()
    written = store.new_local_dir("round-1")
    write_checkpoint_files(written, files=200, size=32 * 1024)
    publisher = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from app.checkpoints.store import "
                               "checkpoint_store; checkpoint_store().publish(Path(sys.argv[1]))", str(written)],
        env=dict(os.environ), stderr=subprocess.PIPE)
    try:
        wait_until(lambda: any(PARTIAL in name for name in objects(s3_store)), 30, "the upload to start",
                   interval=0.02)
    finally:
        publisher.send_signal(signal.SIGKILL)
        publisher.wait()
    left = objects(s3_store)
    assert left and all(name.startswith(".round-1" + PARTIAL) for name in left), left[:5]
    assert len(left) < 200 and not any(name.endswith(MANIFEST) for name in left)

    with pytest.raises(CheckpointError, match=f"round-1 has no {MANIFEST}"):
        ObjectStore(s3_store, tmp_path / "other-machine").checkout("round-1", "")
    # A worker starting later removes the staging prefix once nobody can be writing it any more.
    assert store.sweep_staging() == []
    assert store.sweep_staging(older_than_seconds=0) == [f"{s3_store}/{left[0].split('/')[0]}"]
    assert objects(s3_store) == []
    # Nor did it take a name: the next publish from this directory is round-1 again.
    assert not store.fs.exists(f"{store.root}/round-1")
