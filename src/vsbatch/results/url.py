"""The results database's URL (``VSBATCH_RESULTS_URL``): its form, and how it is shown.

:func:`check_form` is the settings' check (:mod:`vsbatch.config`), run when settings load, so a
malformed URL stops ``run``, ``resume``, ``retry`` and ``demo`` before anything is staged or
applied, and every other command before it starts: one line, exit 2. Only the drivers vsbatch
ships are accepted: SQLite and PostgreSQL through psycopg 3 (``postgresql://`` means psycopg 3,
where SQLAlchemy's default would be psycopg2). :func:`shown_url` is the URL as printed, through
the project's one URL scrubber (:func:`vsbatch.urls.safe_url`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vsbatch.errors import ConfigError
from vsbatch.urls import safe_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["check_form", "missing_sqlite", "parse_url", "shown_url"]

SETTING = "VSBATCH_RESULTS_URL"
EXAMPLES = "postgresql://host:5432/vsbatch or sqlite:////var/lib/vsbatch/results.sqlite3"
# What vsbatch ships a driver for (``postgres`` is SQLAlchemy's older spelling).
_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def check_form(url: str) -> URL:
    """The URL SQLAlchemy is given (``postgresql://`` becomes ``postgresql+psycopg://``).

    Nothing is connected to: this checks the form only.

    Raises:
        ValueError: The URL cannot be parsed, its port is not a port, or it names a driver
            vsbatch does not ship (the message says what and how to fix, without the URL).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port "abc", an unclosed "[::1"
        raise ValueError(f"not a database URL (check its host and port); e.g. {EXAMPLES}") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(
            f"{parsed.drivername} is not supported: vsbatch ships drivers for"
            f" postgresql://... (psycopg 3) and sqlite:///... only; e.g. {EXAMPLES}"
        )
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError(f"port {parsed.port} is out of range (1-65535); e.g. {EXAMPLES}")
    timeout = parsed.query.get("timeout")  # absent: engine.SQLITE_BUSY_SECONDS
    if driver == "sqlite" and timeout is not None and not _seconds(timeout):
        raise ValueError("?timeout= must be a number of seconds, e.g. sqlite:///PATH?timeout=30")
    return parsed.set(drivername=driver)


def _seconds(value: object) -> bool:
    try:
        return 0 <= float(str(value)) < 86400
    except ValueError:
        return False


def parse_url(url: str) -> URL:
    """:func:`check_form`, its refusal one :class:`ConfigError` line naming the setting.

    Raises:
        ConfigError: The URL is malformed or names a driver vsbatch does not ship.
    """
    try:
        return check_form(url)
    except ValueError as exc:
        raise ConfigError(f"invalid setting {SETTING}: {exc}") from None


def shown_url(url: str | URL) -> str:
    """The URL as it may be printed: no password, in the userinfo or in the query
    (``password=``, ``sslpassword=``...)."""
    if isinstance(url, str):
        return safe_url(url)
    return safe_url(url.render_as_string(hide_password=False))


def missing_sqlite(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist yet (a read must not create it),
    else None (it exists, it is in memory, or the store is PostgreSQL)."""
    parsed = parse_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    path = Path(database)
    return None if path.exists() else path
