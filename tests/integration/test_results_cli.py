"""``vsbatch archive`` and ``vsbatch query`` on the command line, and ``report``/``failures`` of
a batch that has left Redis, read from the results store."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.helpers import ledger_env, outside_env, run_vsbatch
from tests.integration.test_full_data_disk import fill, small_disk  # noqa: F401 - a fixture
from tests.results_db import finished_batch, postgres_schema_url
from vsbatch.bootstrap import Deps
from vsbatch.cli.main import cli
from vsbatch.model.row import BatchInfo
from vsbatch.results.store import ResultsStore
from vsbatch.results.url import parse_url


@pytest.fixture
def batch(deps: Deps, emulator: Any, tmp_path: Path) -> BatchInfo:
    """A done batch: 3 rows succeeded, 1 failed (resource_missing), 1 rejected."""
    return finished_batch(deps, emulator, tmp_path, n=3)


@pytest.fixture
def env(redis_url: str, data_dir: Path, results_url: str) -> dict[str, str]:
    return ledger_env(redis_url, data_dir, VSBATCH_RESULTS_URL=results_url)


def vsbatch(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env=env)


class TestArchiveCommand:
    def test_archives_every_ended_batch_once(self, batch: BatchInfo, env: dict[str, str]) -> None:
        """The first run archives the batch; the second has nothing to do."""
        first = vsbatch(env, "archive")
        second = vsbatch(env, "archive")

        assert (0, f"batch {batch.id}: 5 rows archived, complete\n") == (
            first.exit_code,
            first.stdout,
        ), first.output
        assert (0, "") == (second.exit_code, second.stdout)
        assert "nothing to archive" in second.stderr

    def test_an_unknown_batch(self, deps: Deps, env: dict[str, str]) -> None:
        """Naming a batch Redis does not have is one line, exit 2."""
        result = vsbatch(env, "archive", "b_nope")

        assert (2, "error: no batch b_nope (unknown or expired)\n") == (
            result.exit_code,
            result.stderr,
        )

    def test_a_bad_url_is_one_line(self, redis_url: str, data_dir: Path) -> None:
        """An unparseable VSBATCH_RESULTS_URL is one line naming it, exit 2."""
        env = ledger_env(redis_url, data_dir, VSBATCH_RESULTS_URL="nonsense")

        result = vsbatch(env, "archive")

        assert 2 == result.exit_code
        assert 1 == len(result.stderr.splitlines())
        assert "VSBATCH_RESULTS_URL" in result.stderr


class TestQueryCommand:
    @pytest.fixture(autouse=True)
    def _archived(self, batch: BatchInfo, env: dict[str, str]) -> None:
        assert 0 == vsbatch(env, "archive").exit_code

    def test_totals_of_one_batch_as_json(self, batch: BatchInfo, env: dict[str, str]) -> None:
        """Totals per outcome, as JSON."""
        result = vsbatch(env, "query", "totals", batch.id, "--format", "json")

        found = {line["outcome"]: line["rows"] for line in json.loads(result.stdout)}
        assert {"succeeded": 3, "failed": 1, "rejected": 1, "skipped": 0} == found

    def test_totals_of_every_batch_as_csv(self, batch: BatchInfo, env: dict[str, str]) -> None:
        """One CSV line per archived batch, with its counts."""
        result = vsbatch(env, "query", "totals", "--format", "csv")

        (line,) = csv.DictReader(io.StringIO(result.stdout))
        assert (batch.id, "5", "3") == (line["batch_id"], line["archived"], line["succeeded"])

    def test_failures_by_reason_table(self, batch: BatchInfo, env: dict[str, str]) -> None:
        """The table names each reason with its count."""
        result = vsbatch(env, "query", "failures", batch.id)

        assert 0 == result.exit_code, result.output
        assert "resource_missing" in result.stdout

    def test_session_history(self, deps: Deps, batch: BatchInfo, env: dict[str, str]) -> None:
        """A session's archived updates, with the update as sent."""
        second = deps.ledger.get_row(batch.id, 3)  # row 2's session has a rejected row too

        result = vsbatch(env, "query", "session", second.session_id, "--format", "json")

        (entry,) = json.loads(result.stdout)
        assert (batch.id, "succeeded", {"metadata": {"plan": "gold"}}) == (
            entry["batch_id"],
            entry["outcome"],
            entry["update"],
        )

    def test_an_unknown_session(self, env: dict[str, str]) -> None:
        """A session never archived is one line, exit 2."""
        result = vsbatch(env, "query", "session", "vs_never")

        assert (2, "error: no archived update of session vs_never\n") == (
            result.exit_code,
            result.stderr,
        )


class TestQueryGuards:
    def test_a_huge_limit_is_refused(self, env: dict[str, str]) -> None:
        """A --limit past any store's size is a usage error (exit 2), not a traceback."""
        result = vsbatch(env, "query", "totals", "--limit", "100000000000000000000")

        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert 2 == result.exit_code, result.output

    def test_a_query_creates_no_store(self, redis_url: str, tmp_path: Path) -> None:
        """With no SQLite store yet, a query says so in one line (nothing to do: exit 0) and
        creates neither the file nor its directory."""
        path = tmp_path / "nowhere" / "results.sqlite3"
        env = ledger_env(redis_url, tmp_path / "data", VSBATCH_RESULTS_URL=f"sqlite:///{path}")

        results = [vsbatch(env, "query", sub) for sub in ("totals", "failures")]
        results.append(vsbatch(env, "query", "session", "vs_never"))

        expected = f"no results store yet at {path}: run vsbatch archive\n"
        assert [(0, expected)] * 3 == [(r.exit_code, r.stderr) for r in results]
        assert not path.parent.exists()


class TestQueryCsvCells:
    """query's CSV escapes cells as report's and failures' do: a formula gets a leading '."""

    @pytest.fixture
    def formula(self, deps: Deps, emulator: Any, tmp_path: Path, env: dict[str, str]) -> BatchInfo:
        named = finished_batch(deps, emulator, tmp_path, n=1, name='=HYPERLINK("http://x")')
        assert 0 == vsbatch(env, "archive").exit_code
        return named

    def test_totals(self, formula: BatchInfo, env: dict[str, str]) -> None:
        result = vsbatch(env, "query", "totals", "-f", "csv")

        (line,) = csv.DictReader(io.StringIO(result.stdout))
        assert '\'=HYPERLINK("http://x")' == line["name"]

    def test_session(self, deps: Deps, formula: BatchInfo, env: dict[str, str]) -> None:
        session = deps.ledger.get_row(formula.id, 2).session_id

        result = vsbatch(env, "query", "session", session, "-f", "csv")

        names = {line["batch_name"] for line in csv.DictReader(io.StringIO(result.stdout))}
        assert {'\'=HYPERLINK("http://x")'} == names


class TestReportsFromSql:
    @pytest.fixture(autouse=True)
    def _gone_from_redis(self, deps: Deps, batch: BatchInfo, env: dict[str, str]) -> None:
        assert 0 == vsbatch(env, "archive").exit_code
        deps.redis.delete(*deps.ledger.keys.batch_keys(batch.id))

    def test_report_json_reads_the_archived_rows(
        self, batch: BatchInfo, env: dict[str, str]
    ) -> None:
        """``report --format json`` of a batch gone from Redis gives its rows from SQL and
        exits with the batch's code (1: a row failed)."""
        result = vsbatch(env, "report", batch.id, "--format", "json")

        report = json.loads(result.stdout)
        assert (1, batch.id, 5) == (result.exit_code, report["id"], len(report["rows"]))
        assert report["rows"][0]["idempotency_key"].startswith("vsbatch-")

    def test_failures_csv_reads_the_archived_rows(
        self, batch: BatchInfo, env: dict[str, str]
    ) -> None:
        """``failures`` of a batch gone from Redis lists its failed and rejected rows."""
        result = vsbatch(env, "failures", batch.id)

        assert (0, 3) == (result.exit_code, len(result.stdout.strip().splitlines())), result.output

    def test_a_batch_in_neither(self, env: dict[str, str]) -> None:
        """A batch neither Redis nor SQL has is one line, exit 2."""
        result = vsbatch(env, "report", "b_nope")

        assert 2 == result.exit_code
        assert "nor in the results store" in result.stderr


def _one_line(result: Any) -> str:
    """The one stderr line of a refused command (exit 2, no traceback)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert 2 == result.exit_code, result.output
    (line,) = result.stderr.splitlines()
    return str(line)


class TestStoreFailures:
    """A store that fails in the middle of a command: one line saying what, where and how to
    fix it, exit 2; archiving again afterwards leaves every row once."""

    def test_a_sqlite_store_locked_by_another_writer(
        self, batch: BatchInfo, redis_url: str, data_dir: Path, tmp_path: Path
    ) -> None:
        """Another process holds the write lock past the busy timeout (``?timeout=``)."""
        path = tmp_path / "locked.sqlite3"
        url = f"sqlite:///{path}?timeout=0.2"
        env = ledger_env(redis_url, data_dir, VSBATCH_RESULTS_URL=url)
        ResultsStore.open(url).close()
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            locked = vsbatch(env, "archive")
        finally:
            holder.close()
        again = vsbatch(env, "archive")

        line = _one_line(locked)
        assert "database is locked" in line and str(path) in line and "let it finish" in line
        assert (0, f"batch {batch.id}: 5 rows archived, complete\n") == (
            again.exit_code,
            again.stdout,
        )

    def test_a_full_disk(
        self, batch: BatchInfo, redis_url: str, data_dir: Path, request: pytest.FixtureRequest
    ) -> None:
        """The SQLite store's disk fills up: free space, then archive again."""
        disk: Path = request.getfixturevalue("small_disk")
        url = f"sqlite:///{disk / 'results.sqlite3'}"
        env = ledger_env(redis_url, data_dir, VSBATCH_RESULTS_URL=url)
        ResultsStore.open(url).close()
        fill(disk)
        full = vsbatch(env, "archive")
        (disk / "filler").unlink()
        again = vsbatch(env, "archive")

        line = _one_line(full)
        assert "full" in line and "free space" in line and str(disk) in line, line
        assert (0, f"batch {batch.id}: 5 rows archived, complete\n") == (
            again.exit_code,
            again.stdout,
        )

    def test_a_damaged_schema(
        self, batch: BatchInfo, env: dict[str, str], results_url: str
    ) -> None:
        """Someone dropped a table: query names the store and how to rebuild it."""
        assert 0 == vsbatch(env, "archive").exit_code
        engine = create_engine(parse_url(results_url))
        cascade = " CASCADE" if engine.dialect.name == "postgresql" else ""
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE vsbatch_rows{cascade}"))
        engine.dispose()

        result = vsbatch(env, "query", "totals", batch.id)

        line = _one_line(result)
        assert "VSBATCH_RESULTS_URL" in line and "schema is damaged" in line, line

    def test_a_postgresql_connection_killed_mid_archive(
        self, batch: BatchInfo, redis_url: str, data_dir: Path, postgres_server: str
    ) -> None:
        """pg_terminate_backend while archive waits inside its transaction: one line, exit 2,
        the password hidden; the next archive copies every row once."""
        schemas = postgres_schema_url(postgres_server)
        url = next(schemas)
        try:
            self._killed_then_again(batch, redis_url, data_dir, url)
        finally:
            schemas.close()

    def _killed_then_again(
        self, batch: BatchInfo, redis_url: str, data_dir: Path, url: str
    ) -> None:
        import psycopg

        ResultsStore.open(url).close()
        env = outside_env(**ledger_env(redis_url, data_dir, VSBATCH_RESULTS_URL=url))
        plain = url.replace("postgresql+psycopg", "postgresql")
        holder = psycopg.connect(plain)
        holder.execute("LOCK TABLE vsbatch_batches IN ACCESS EXCLUSIVE MODE")
        archive = subprocess.Popen(
            [sys.executable, "-m", "vsbatch", "archive"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _terminate_the_waiting_backend(plain, holder.info.backend_pid)
        finally:
            holder.rollback()
            holder.close()
        _, stderr = archive.communicate(timeout=60)
        again = run_vsbatch(env, "archive", timeout=60)

        assert "Traceback" not in stderr and 2 == archive.returncode, stderr
        (line,) = stderr.splitlines()
        assert "VSBATCH_RESULTS_URL" in line and "terminat" in line, line
        assert (0, f"batch {batch.id}: 5 rows archived, complete\n") == (
            again.returncode,
            again.stdout,
        ), again.stderr


def _terminate_the_waiting_backend(url: str, holder_pid: int) -> None:
    """Wait (10 s at most) for a backend blocked on the holder's lock, then terminate it.

    Its own autocommit connection: a transaction sees one snapshot of pg_stat_activity.
    """
    import psycopg

    deadline = time.monotonic() + 10
    waiting = "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> %s"
    with psycopg.connect(url, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            found = watcher.execute(waiting, (holder_pid,)).fetchall()
            if found:
                watcher.execute("SELECT pg_terminate_backend(%s)", (found[0][0],))
                return
            time.sleep(0.05)
    raise AssertionError("no archive waited on the lock within 10 s")
