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
