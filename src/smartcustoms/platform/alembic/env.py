"""Alembic environment: every slice's tables on one metadata; SQLite gets batch mode."""

from __future__ import annotations

from alembic import context

from smartcustoms.platform.db import Base, dispose, make_engine
from smartcustoms.platform.slices import load_all_tables

load_all_tables()
config = context.config
url = config.get_main_option("sqlalchemy.url") or ""
engine = make_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
dispose(engine)  # a SQLite database whole in its file: tests copy a migrated template
