import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_defaults_are_the_embedded_ones(monkeypatch):
    for name in ("DATABASE_URL", "BROKER_URL", "CHECKPOINT_DIR", "ENV", "SECRET_KEY"):
        monkeypatch.delenv(f"TUNELOOP_{name}", raising=False)
    settings = Settings()
    assert settings.database_url == "sqlite:///./var/tuneloop.db"
    assert settings.embedded_broker
    assert str(settings.checkpoint_dir) == "var/checkpoints"


def test_production_refuses_the_default_secret(monkeypatch):
    monkeypatch.setenv("TUNELOOP_ENV", "production")
    monkeypatch.delenv("TUNELOOP_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="TUNELOOP_SECRET_KEY must be set"):
        Settings()
    monkeypatch.setenv("TUNELOOP_SECRET_KEY", "a real secret")
    assert Settings().env == "production"


def test_several_training_nodes_need_the_masters_address(monkeypatch):
    monkeypatch.setenv("TUNELOOP_TRAIN_NODES", "2")
    for master in ("", "10.0.0.5", "10.0.0.5:port"):
        monkeypatch.setenv("TUNELOOP_TRAIN_MASTER", master)
        with pytest.raises(ValidationError, match="TUNELOOP_TRAIN_NODES above 1 needs TUNELOOP_TRAIN_MASTER"):
            Settings()
    monkeypatch.setenv("TUNELOOP_TRAIN_MASTER", "10.0.0.5:29500")
    assert Settings().train_master == "10.0.0.5:29500"


def test_the_readme_lists_every_setting():
    """Operators configure by the README's table: a setting missing there does not exist for them."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `TUNELOOP_([A-Z_]+)` \|", table, flags=re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}
