"""``vsbatch archive`` and ``vsbatch query`` on the command line, and ``report``/``failures`` of
a batch that has left Redis, read from the results store."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers import ledger_env
from tests.results_db import finished_batch
from vsbatch.bootstrap import Deps
from vsbatch.cli.main import cli
from vsbatch.model.row import BatchInfo


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
