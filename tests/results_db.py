"""Results-store fixtures: a SQLite file always, and a real PostgreSQL when one is reachable.

PostgreSQL: ``VSBATCH_TEST_POSTGRES_URL`` when set, otherwise the development machines' local
server (``postgresql://postgres@127.0.0.1:5432/test``) if it answers; each test gets a schema
of its own (``search_path``), dropped afterwards. With neither, the PostgreSQL half skips with
the reason (and fails when ``CI`` is set and ``VSBATCH_TEST_POSTGRES_URL`` was given).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vsbatch.bootstrap import Deps
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import BatchInfo
from vsbatch.worker.process_row import process_row
from vsbatch.worker.row_options import RowOptions

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> tuple[str | None, str]:
    """The PostgreSQL server to test against, or None and why not."""
    url = os.environ.get("VSBATCH_TEST_POSTGRES_URL") or LOCAL_POSTGRES
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
            return url, ""
    except Exception as exc:  # any failure to connect is a reason to skip
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"no PostgreSQL at {url} ({first}); set VSBATCH_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The base URL of a reachable PostgreSQL, or a skip saying why there is none."""
    url, why = postgres_base_url()
    if url is None:
        if os.environ.get("CI") and os.environ.get("VSBATCH_TEST_POSTGRES_URL"):
            pytest.fail(why)
        pytest.skip(why)
    return url


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


def finished_batch(deps: Deps, emulator: Any, tmp_path: Path, n: int = 12) -> BatchInfo:
    """A CSV batch worked row by row against the emulator until done: ``n`` sessions that
    succeed, one unknown session (failed) and one value Stripe refuses (rejected)."""
    ids = emulator.seed(count=n)
    lines = [f"{sid},gold\n" for sid in ids]
    lines += ["vs_" + "M" * 24 + ",gold\n", f"{ids[0]}," + "x" * 501 + "\n"]
    path = tmp_path / "plans.csv"
    path.write_text("id,metadata.plan\n" + "".join(lines), encoding="utf-8")
    chunks: list[list[int]] = []
    batch = submit_csv(deps, path, lambda _b, rows, _o: chunks.append(list(rows)))
    for rows in chunks:
        for row in rows:
            process_row(deps, batch.id, row, options=RowOptions(), sleep=no_sleep)
    return deps.ledger.get_batch(batch.id)
