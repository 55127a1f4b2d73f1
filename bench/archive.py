"""The archive scenario: how fast finished rows go from the Redis ledger into SQL, and what a
row costs on disk there.

A batch of realistic rows (90 % succeeded with a request id and status, 6 % failed with
Stripe's error, 4 % skipped; a two-key metadata update each) is written to an embedded Redis
through the ledger and ended row by row, as workers end them. Then :class:`Archiver` copies
it, timed: to a SQLite file (the embedded default), and to PostgreSQL when one is reachable
(``VSBATCH_TEST_POSTGRES_URL``, or the local server on 5432), into a schema of its own,
dropped afterwards. Bytes per row: the SQLite file (after a WAL checkpoint) over the rows;
PostgreSQL's ``pg_total_relation_size`` of both tables (indexes and TOAST included).
A second pass of the same batch (every row a conflict: the at-least-once rerun) is timed too.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from bench.report import Ratio, ScenarioResult, table
from vsbatch.model.row import NewRow, Outcome
from vsbatch.results.archiver import Archiver
from vsbatch.results.store import ResultsStore
from vsbatch.store.embedded_redis import EmbeddedRedis
from vsbatch.store.ledger import Ledger

if TYPE_CHECKING:
    from bench.sizes import Sizes

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
FIELDS = ["database", "rows", "archive s", "rows/s", "rows/cpu-s", "rerun rows/s", "bytes/row"]


def _fill(ledger: Ledger, rows: int) -> str:
    """A done batch of ``rows`` realistic rows; its id."""
    batch = ledger.create_batch(name="bench", kind="csv", source="bench.csv")
    news = (
        NewRow(
            n,
            f"vs_{n:024d}",
            None,
            {"metadata": {"plan": "gold", "migrated_at": "2026-07-01"}},
        )
        for n in range(2, rows + 2)
    )
    ledger.add_rows(batch.id, news)
    ledger.open_batch(batch.id)
    for n in range(2, rows + 2):
        outcome, fields = _ending(n)
        ledger.transition(batch.id, n, outcome, **fields)
    return batch.id


def _ending(n: int) -> tuple[Outcome, dict[str, Any]]:
    if n % 50 < 3:
        return Outcome.FAILED, {
            "attempts": 1,
            "retryable": False,
            "error_type": "InvalidRequestError",
            "error_code": "resource_missing",
            "error_message": f"No such verificationsession: 'vs_{n:024d}'",
            "request_id": f"req_{n:014d}",
        }
    if n % 50 < 5:
        return Outcome.SKIPPED, {"reason": "unchanged", "session_status": "verified"}
    return Outcome.SUCCEEDED, {
        "attempts": 1,
        "request_id": f"req_{n:014d}",
        "session_status": "requires_input",
    }


def _postgres() -> Iterator[tuple[str, str, Any]]:
    """(URL of a fresh schema, the schema, a connection) on a reachable PostgreSQL, or none."""
    try:
        import psycopg

        base = os.environ.get("VSBATCH_TEST_POSTGRES_URL") or LOCAL_POSTGRES
        conn = psycopg.connect(base, autocommit=True, connect_timeout=3)
    except Exception as exc:
        print(f"  (no PostgreSQL: {str(exc).strip().splitlines()[0]})")
        return
    schema = f"vsbatch_bench_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base}?options=-csearch_path%3D{schema}", schema, conn
    finally:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


def _timed(ledger: Ledger, url: str, batch_id: str) -> tuple[float, float, float, ResultsStore]:
    """Wall seconds of a first archive, this process's CPU seconds for it (a figure the
    load of a shared machine does not inflate), wall seconds of a rerun, and the store."""
    store = ResultsStore.open(url)
    archiver = Archiver(ledger, store)
    t0, c0 = time.perf_counter(), time.process_time()
    archiver.archive_batch(batch_id)
    first, cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    archiver.archive_batch(batch_id)
    return first, cpu, time.perf_counter() - t0, store


def archive(sizes: Sizes) -> ScenarioResult:
    """Rows/s from Redis into SQLite and PostgreSQL, and bytes per row stored."""
    rows = 200_000 if sizes.label == "full" else 20_000
    result = ScenarioResult("archive")
    lines: list[tuple[str, int, float, float, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="vsbatch-bench-archive-") as tmp:
        server = EmbeddedRedis(Path(tmp, "redis"), appendonly=False).start()
        try:
            ledger = Ledger(redis.Redis.from_url(server.url))
            t0 = time.perf_counter()
            batch_id = _fill(ledger, rows)
            print(f"  ledger filled: {rows:,} rows in {time.perf_counter() - t0:.1f} s")
            path = Path(tmp, "results.sqlite3")
            first, cpu, rerun, store = _timed(ledger, f"sqlite:///{path}", batch_id)
            with store.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            store.close()
            size = _size(path)
            lines.append(
                ("sqlite", rows, first, rows / first, rows / cpu, rows / rerun, size / rows)
            )
            for url, schema, conn in _postgres():
                first, cpu, rerun, store = _timed(ledger, url, batch_id)
                store.close()
                tables = (f"{schema}.vsbatch_rows", f"{schema}.vsbatch_batches")
                sql = "SELECT pg_total_relation_size(%s) + pg_total_relation_size(%s)"
                size = conn.execute(sql, tables).fetchone()[0]
                speeds = (rows / first, rows / cpu, rows / rerun)
                lines.append(("postgresql", rows, first, *speeds, size / rows))
        finally:
            server.stop()
    title = f"archive: one done batch, Redis -> SQL ({os.cpu_count()} CPUs)"
    result.tables.append(table(title, FIELDS, lines))
    result.notes.append(
        "rows/s includes reading the ledger (page.lua), deriving each row's Idempotency-Key"
        " and the upserts in blocks of 500; rows/cpu-s: per CPU second of this process (the"
        " server's own CPU not counted); rerun: the same rows again, every one a conflict"
    )
    for name, _, _, speed, _, _, per_row in lines:
        result.ratios.append(Ratio("archive", f"{name}: rows/s archived", speed))
        result.ratios.append(Ratio("archive", f"{name}: bytes per row", per_row))
    result.data = {"rows": [dict(zip(FIELDS, line, strict=True)) for line in lines]}
    return result


def _size(path: Path) -> int:
    """The SQLite database's bytes on disk (with its WAL, if any is left)."""
    files = path.parent.glob(path.name + "*")
    return sum(p.stat().st_size for p in files if not p.name.endswith((".lock", "-shm")))
