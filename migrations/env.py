"""Alembic environment: the URL comes from tuneloop's settings unless one is given."""

from alembic import context

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.db import make_engine
from app.models import Base
from app.settings import get_settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database_url

# Celery and kombu keep their own tables in the same database when the embedded
# broker is used; they are not ours to migrate.
FOREIGN_TABLE_PREFIXES = ("kombu_", "celery_")


def include_name(name, type_, parent_names) -> bool:
    if type_ == "table":
        return not (name or "").startswith(FOREIGN_TABLE_PREFIXES)
    return True


def run_migrations() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                _run(connection)
        finally:
            engine.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
