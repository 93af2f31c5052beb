"""Checkpoint paths stay inside TUNELOOP_CHECKPOINT_DIR: a row whose relative path
climbs out with `..` is refused when written and when read (workers load models
through resolve_path, so a planted row cannot make them read or write elsewhere).

Prompt import reads a file the operator names on the command line (`tuneloop
prompts import FILE`); no web route takes a file path, so there is nothing to confine.
"""

import pytest

from app.checkpoints.service import add_checkpoint, resolve_path
from app.errors import InvalidInput
from app.models import Checkpoint, CheckpointStatus
from app.settings import get_settings


@pytest.mark.parametrize("path", ["../outside", "round-1/../../etc", "..", "a/b/../../../x"])
def test_a_relative_path_with_dotdot_never_leaves_the_store(db, path):
    with pytest.raises(InvalidInput):
        add_checkpoint(db, path=path, name="evil", parent_id=None)
    db.rollback()
    # Planted straight into the table: reading it is refused too.
    planted = Checkpoint(version=1, path=path, name="evil", parent_id=None, content_hash="",
                         metrics={}, status=CheckpointStatus.current)
    db.add(planted)
    db.flush()
    with pytest.raises(InvalidInput, match="leaves the checkpoint store"):
        resolve_path(planted)


def test_store_paths_and_registered_absolute_paths_resolve(db, tmp_path):
    inside = add_checkpoint(db, path="round-7", name="round-7", parent_id=None)
    assert resolve_path(inside) == get_settings().checkpoint_dir / "round-7"
    # Absolute paths come only from `tuneloop checkpoint register` (an operator).
    registered = add_checkpoint(db, path=str(tmp_path / "base"), name="base", parent_id=None)
    assert resolve_path(registered) == tmp_path / "base"


def test_the_generation_worker_refuses_a_planted_path(db):
    from worker.pool import sample

    planted = Checkpoint(version=1, path="../../elsewhere", name="evil", parent_id=None,
                         content_hash="", metrics={}, status=CheckpointStatus.current)
    db.add(planted)
    db.flush()
    with pytest.raises(InvalidInput):
        sample(planted, ["a prompt"], seed=0)
