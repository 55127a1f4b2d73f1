"""Opening the results database: the URL, the engine, the migrations, and one-line errors.

``VSBATCH_RESULTS_URL`` names the database (``Settings.results_database_url``): unset, a
SQLite file in the data directory (``<data_dir>/results.sqlite3``);
``postgresql://user@host/db`` a shared PostgreSQL (psycopg 3).
Opening applies Alembic's migrations (:mod:`vsbatch.results.migrations`, shipped in the
package) up to the newest, under a lock, so several workers opening at once migrate once.
A URL that cannot be parsed (:mod:`vsbatch.results.url`), a database that cannot be reached
or that fails in the middle of a command (:func:`store_failure`: locked, full, schema damaged,
connection killed) is one :class:`~vsbatch.errors.ConfigError` line saying what, where and how
to fix it, with the password hidden.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from vsbatch.errors import ConfigError
from vsbatch.results.url import parse_url, shown_url

__all__ = ["open_engine", "parse_url", "shown_url", "store_failure", "upgrade"]

# How long a SQLite writer waits for another's lock; ``sqlite:///path?timeout=5`` sets it.
SQLITE_BUSY_SECONDS = 30.0
SCRIPT_LOCATION = "vsbatch.results:migrations"
VERSION_TABLE = "vsbatch_alembic_version"  # ours: a shared database may have alembic_version
HEAD = "r0001"  # the newest migration (a test checks it against the scripts)
# Any number both sides agree on: PostgreSQL's advisory lock of the migrations.
_MIGRATION_LOCK = 0x76736261  # "vsba"


def open_engine(url: str, *, migrate: bool = True) -> Engine:
    """An engine on ``url``, connected once and migrated to the newest schema.

    Raises:
        ConfigError: Bad URL, missing driver, unreachable or refusing database (one line).
    """
    parsed = parse_url(url)
    try:
        engine = _engine(parsed)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise ConfigError(f"invalid setting VSBATCH_RESULTS_URL: {exc}") from None
    try:
        if migrate:
            upgrade(engine)
        else:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ConfigError(unreachable(parsed, exc)) from None
    except Exception as exc:
        engine.dispose()
        if not _is_alembic_error(exc):
            raise
        raise ConfigError(
            f"results database {shown_url(parsed)} has a schema this vsbatch does not know"
            f" ({exc}): a newer vsbatch migrated it; upgrade vsbatch"
        ) from None
    return engine


def _is_alembic_error(exc: Exception) -> bool:
    from alembic.util import CommandError

    return isinstance(exc, CommandError)


def unreachable(url: str | URL, exc: SQLAlchemyError) -> str:
    """One line: which results database failed (no password), the driver's first line, and
    how to fix it."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = detail[0] if detail else type(exc).__name__
    if "disk i/o error" in first.lower() and _disk_full(url):
        first += " (no space left on its disk)"  # what SQLite says when the WAL cannot grow
    where = shown_url(url)
    return f"results database {where} (VSBATCH_RESULTS_URL) is unusable: {first}; {_fix(first)}"


def store_failure(url: str | URL, exc: SQLAlchemyError) -> ConfigError:
    """A store that failed in the middle of a command, as one line (exit 2)."""
    return ConfigError(unreachable(url, exc))


# (words of the driver's message, the fix): the first match wins.
_FIXES = (
    (
        ("database or disk is full", "no space left", "could not extend", "disk full"),
        "free space on its disk, then run the command again (archiving is idempotent)",
    ),
    (
        ("database is locked", "database table is locked"),
        "another process held its write lock too long: let it finish or stop it, then run the"
        " command again (sqlite:///PATH?timeout=SECONDS waits longer)",
    ),
    (
        ('database "',),  # PostgreSQL: database "x" does not exist
        "create the database first (createdb NAME); vsbatch creates its tables in it",
    ),
    (
        ("no such table", "no such view", "no such column", 'relation "'),
        "its schema is damaged (a table or view was dropped): restore it from a backup, or move"
        " it aside and run 'vsbatch archive' to rebuild it from what Redis still holds",
    ),
)


def _disk_full(url: str | URL) -> bool:
    """Whether a SQLite store's file system has (almost) no byte left."""
    parsed = parse_url(url) if isinstance(url, str) else url
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return False
    try:
        found = os.statvfs(Path(database).parent)
    except OSError:
        return False
    return found.f_bavail * found.f_frsize < 64 * 1024


def _fix(first: str) -> str:
    lowered = first.lower()
    for words, fix in _FIXES:
        if any(word in lowered for word in words):
            return fix
    return (
        "check VSBATCH_RESULTS_URL and that the database is up, then run the command again"
        " (archiving is idempotent)"
    )


def _engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = url.database or ""
    if database and database != ":memory:":
        # Rows hold what the CSV held (emails, phone numbers): the file is the owner's alone.
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        Path(database).touch(mode=0o600, exist_ok=True)
    # A worker's archiver and a reader share the file: wait for the writer's lock a while.
    busy = float(url.query.get("timeout", SQLITE_BUSY_SECONDS))  # type: ignore[arg-type]
    engine = create_engine(url, connect_args={"timeout": busy})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the archiver
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL stays crash-safe; only the OS may lose
    cursor.close()


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (None: no vsbatch schema yet)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        found = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
        return found[0] if len(found) == 1 else None


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied.

    A database already at :data:`HEAD` costs one query: Alembic is not even imported (every
    ``report`` of an archived batch and every archiving pass of a worker opens the store).
    """
    if current_revision(engine) == HEAD:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    with _migration_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """A file lock beside a SQLite database (PostgreSQL locks inside its transaction)."""
    database = engine.url.database or ""
    if engine.url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        yield
        return
    lock = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    with open(lock, "r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
