"""Results-store fixtures: a SQLite file always, and a real PostgreSQL when one is reachable.

PostgreSQL: ``VSBATCH_TEST_POSTGRES_URL`` when set (unreachable: a skip, a failure when ``CI``
is set); otherwise the development machines' local server
(``postgresql://postgres@127.0.0.1:5432/test``) if it answers; otherwise a private server the
session starts with ``initdb``/``pg_ctl`` when they are on PATH (``tests.private_postgres``;
``VSBATCH_TEST_POSTGRES_START=1`` goes straight there). Each test gets a schema of its own
(``search_path``), dropped afterwards. With none of these the PostgreSQL half skips, saying why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.private_postgres import PrivatePostgres, Unavailable
from vsbatch.bootstrap import Deps
from vsbatch.intake.stage import SubmitOptions, submit_csv
from vsbatch.model.row import BatchInfo
from vsbatch.worker.process_row import process_row
from vsbatch.worker.row_options import RowOptions

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def reachable(url: str) -> str | None:
    """None when a PostgreSQL answers at ``url``, else why not (one line)."""
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
            return None
    except Exception as exc:  # any failure to connect is a reason to skip
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL at {url} ({first})"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a PostgreSQL to test against, or a skip saying why there is none."""
    given = os.environ.get("VSBATCH_TEST_POSTGRES_URL")
    if given:
        why = reachable(given)
        if why is not None and os.environ.get("CI"):
            pytest.fail(why)
        if why is not None:
            pytest.skip(why)
        yield given
        return
    local_why = "VSBATCH_TEST_POSTGRES_START=1"
    if os.environ.get("VSBATCH_TEST_POSTGRES_START") != "1":
        local_why = reachable(LOCAL_POSTGRES) or ""
        if not local_why:
            yield LOCAL_POSTGRES
            return
    server = PrivatePostgres(tmp_path_factory.mktemp("postgres"))
    try:
        url = server.start()
    except Unavailable as exc:
        server.stop()
        pytest.skip(f"{local_why}; {exc}; set VSBATCH_TEST_POSTGRES_URL")
    try:
        yield url
    finally:
        server.stop()


def postgres_schema_url(base: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema, dropped when the iterator ends."""
    import psycopg

    schema = f"vsbatch_test_{uuid.uuid4().hex[:12]}"
    plain = base.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def results_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A results database URL: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.sqlite3'}"
        return
    base = request.getfixturevalue("postgres_server")
    yield from postgres_schema_url(base)


def no_sleep(_seconds: float) -> None:
    """Retries in these tests never really wait."""


def finished_batch(
    deps: Deps, emulator: Any, tmp_path: Path, n: int = 12, name: str | None = None
) -> BatchInfo:
    """A CSV batch worked row by row against the emulator until done: ``n`` sessions that
    succeed, one unknown session (failed) and one value Stripe refuses (rejected)."""
    ids = emulator.seed(count=n)
    lines = [f"{sid},gold\n" for sid in ids]
    lines += ["vs_" + "M" * 24 + ",gold\n", f"{ids[0]}," + "x" * 501 + "\n"]
    path = tmp_path / "plans.csv"
    path.write_text("id,metadata.plan\n" + "".join(lines), encoding="utf-8")
    chunks: list[list[int]] = []
    options = SubmitOptions(name=name)
    batch = submit_csv(deps, path, lambda _b, rows, _o: chunks.append(list(rows)), options)
    for rows in chunks:
        for row in rows:
            process_row(deps, batch.id, row, options=RowOptions(), sleep=no_sleep)
    return deps.ledger.get_batch(batch.id)
