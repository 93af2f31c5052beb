import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from worker.training.checkpoint_io import (
    METADATA_FILE,
    CheckpointError,
    content_hash,
    read_metadata,
    verify_checkpoint,
    write_checkpoint,
)


@pytest.fixture
def save_tiny_model(tiny_base_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)

    def save(directory: Path) -> None:
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    return save


def publish(out_dir: Path, write_files) -> Path:
    return write_checkpoint(
        out_dir, write_files, algorithm="dpo", config={"beta": 0.1}, metrics={"loss": 0.5}, parent="base"
    )


def test_published_checkpoint_is_complete_and_described(tmp_path, save_tiny_model):
    out_dir = publish(tmp_path / "v2", save_tiny_model)
    metadata = verify_checkpoint(out_dir)
    assert metadata["algorithm"] == "dpo"
    assert metadata["config"] == {"beta": 0.1}
    assert metadata["parent"] == "base"
    assert metadata["content_hash"] == content_hash(out_dir)
    assert "created_at" in metadata
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v2"]  # no staging directory left behind


def test_tampering_is_detected(tmp_path, save_tiny_model):
    out_dir = publish(tmp_path / "v2", save_tiny_model)
    (out_dir / "config.json").write_text(json.dumps({"tampered": True}))
    with pytest.raises(CheckpointError, match="content hash"):
        verify_checkpoint(out_dir)


def test_a_crash_while_writing_leaves_nothing(tmp_path, save_tiny_model):
    def crash_halfway(directory: Path) -> None:
        save_tiny_model(directory)
        raise KeyboardInterrupt  # e.g. the worker is killed mid-save

    with pytest.raises(KeyboardInterrupt):
        publish(tmp_path / "v2", crash_halfway)
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_that_does_not_load_is_never_published(tmp_path):
    def write_garbage(directory: Path) -> None:
        (directory / "config.json").write_text("{not json")

    with pytest.raises(CheckpointError, match="does not load"):
        publish(tmp_path / "v2", write_garbage)
    assert list(tmp_path.iterdir()) == []


def test_published_checkpoints_are_never_overwritten(tmp_path, save_tiny_model):
    out_dir = publish(tmp_path / "v2", save_tiny_model)
    before = read_metadata(out_dir)
    with pytest.raises(FileExistsError):
        publish(out_dir, save_tiny_model)
    assert read_metadata(out_dir) == before
    assert (out_dir / METADATA_FILE).is_file()


def test_sweep_removes_only_old_staging_directories(tmp_path, save_tiny_model):
    import os
    import time

    from worker.training.checkpoint_files import sweep_partial

    published = write_checkpoint(tmp_path / "round-1", save_tiny_model, algorithm="dpo", config={},
                                 metrics={}, parent=None)
    old = tmp_path / "rounds" / "7" / ".reward_model.partial-0badc0de"
    old.mkdir(parents=True)
    (old / "model.safetensors").write_bytes(b"half")
    hour_ago = time.time() - 7200
    os.utime(old, (hour_ago, hour_ago))
    fresh = tmp_path / ".round-2.partial-12345678"  # maybe being written right now
    fresh.mkdir()
    assert sweep_partial(tmp_path) == [old]
    assert not old.exists() and fresh.exists() and published.exists()
