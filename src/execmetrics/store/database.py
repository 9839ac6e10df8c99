"""Connecting to the database and bringing its schema up to date."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration. Opening a database at this revision skips Alembic altogether, which
# keeps every command's start-up short; tests/store/test_migrations.py keeps it true.
SCHEMA_REVISION = "0014"
# Connections kept open per engine: a server process answers up to 40 requests at once (its
# worker threads), and a connection opened and closed per request beyond the pool cost
# PostgreSQL a new backend each time.
POOL_SIZE = 20
POOL_OVERFLOW = 20


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")
    # Staging tables and sorts of a large ingest stay in memory rather than a temp file.
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _session_role(role: str) -> Any:
    def set_role(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT set_config('execmetrics.role', %s, false)", (role,))
        dbapi_connection.commit()

    return set_role


def make_engine(url: str, session_role: str | None = None) -> Engine:
    """An engine for a SQLite or PostgreSQL URL; a SQLite file's folder is created.

    `session_role` gives every PostgreSQL connection that role for row-level security, for
    the command line, whose user holds the database credentials; the server instead sets the
    caller's role per transaction.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        in_memory = not parsed.database or parsed.database == ":memory:"
        if not in_memory:
            Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
        # An in-memory database lives in one connection (SQLAlchemy's singleton pool).
        pool = {} if in_memory else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
        engine = create_engine(parsed, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(
            parsed, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW
        )
        if session_role is not None:
            event.listen(engine, "connect", _session_role(session_role))
        return engine
    raise ValueError(
        f"--db: unsupported database {parsed.get_backend_name()!r} (SQLite or PostgreSQL)"
    )


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("execmetrics.store") / "migrations"))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Apply every pending migration."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def schema_revision(engine: Engine) -> str | None:
    """The migration the database is at; None for a new database."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def open_database(url: str, session_role: str | None = None) -> Engine:
    """An engine whose schema is at the latest migration."""
    engine = make_engine(url, session_role)
    if schema_revision(engine) != SCHEMA_REVISION:
        upgrade(engine)
    return engine
