"""The migrations build the schema the models describe, and undo it, on both backends."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import make_engine
from app.migrate import downgrade, upgrade
from app.models import Base
from tests.conftest import reset_app_caches

OUR_TABLES = {t.name for t in Base.metadata.sorted_tables}


def _schema_diff(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_url(request, app_env, sqlite_url):
    if request.param == "sqlite":
        yield sqlite_url
        return
    reset_app_caches()
    downgrade(app_env, "base")
    yield app_env
    upgrade(app_env)


def test_upgrade_matches_models_and_downgrade_empties(empty_url):
    assert _tables(empty_url) == set()
    upgrade(empty_url)
    assert _tables(empty_url) == OUR_TABLES
    assert _schema_diff(empty_url) == []
    downgrade(empty_url, "base")
    assert _tables(empty_url) == set()
