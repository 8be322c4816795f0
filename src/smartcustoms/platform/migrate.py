"""Alembic driven from code: one branch per slice, all upgraded to their heads."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from smartcustoms.platform.settings import get_settings
from smartcustoms.platform.slices import migration_dirs

ALEMBIC_DIR = Path(__file__).resolve().parent / "alembic"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("version_locations", " ".join(str(p) for p in migration_dirs()))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().database_url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None) -> None:
    """Bring the database schema to the newest revision of every slice."""
    command.upgrade(alembic_config(url), "heads")


def current_heads(url: str | None = None) -> list[str]:
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(alembic_config(url)).get_heads())
