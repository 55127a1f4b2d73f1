"""``vsbatch explain BATCH ROW`` (or ``BATCH:ROW``) on the command line: the story as text or
JSON, and one line with exit code 2 for a batch or row that does not exist."""

from __future__ import annotations

import json
from pathlib import Path

import redis
from typer.testing import CliRunner

from tests.helpers import ledger_env, outside_env, run_vsbatch
from vsbatch.cli.main import cli
from vsbatch.model.row import NewRow, Outcome
from vsbatch.store.ledger import Ledger

SID = "vs_1EXPLAINCLIAAAAAAAAAAAAA"
KEY = "vsbatch-b_0123456789abcdef:7-abcd"


def _failed_row(redis_client: redis.Redis) -> str:
    """A batch whose row 7 failed after two attempts; its id."""
    ledger = Ledger(redis_client)
    batch = ledger.create_batch(name="t", kind="csv", source="t.csv")
    ledger.add_rows(batch.id, [NewRow(7, SID, None, {"metadata": {"k": "v"}}, KEY)])
    ledger.open_batch(batch.id)
    ledger.transition(batch.id, 7, Outcome.RUNNING)
    ledger.transition(
        batch.id,
        7,
        Outcome.FAILED,
        attempts=2,
        retryable=False,
        error_type="invalid_request_error",
        error_code="resource_missing",
        error_message="No such verification session",
        request_id="req_miss",
    )
    return batch.id


class TestExplainCommand:
    def test_batch_colon_row_prints_the_story(
        self, redis_url: str, redis_client: redis.Redis, data_dir: Path
    ) -> None:
        """``explain B:7`` (the application API's update id) tells row 7's story, exit 0."""
        batch_id = _failed_row(redis_client)

        result = CliRunner().invoke(
            cli, ["explain", f"{batch_id}:7"], env=ledger_env(redis_url, data_dir)
        )

        assert (0, True, True, True) == (
            result.exit_code,
            SID in result.stdout,
            "resource_missing" in result.stdout,
            f"vsbatch failures {batch_id}" in result.stdout,
        ), result.output

    def test_json_format_gives_the_same_story(
        self, redis_url: str, redis_client: redis.Redis, data_dir: Path
    ) -> None:
        """``--format json`` prints the story as one JSON document."""
        batch_id = _failed_row(redis_client)

        result = CliRunner().invoke(
            cli, ["explain", batch_id, "7", "--format", "json"], env=ledger_env(redis_url, data_dir)
        )
        story = json.loads(result.stdout)

        assert ("failed", 2, [KEY], ["running", "failed"]) == (
            story["outcome"],
            story["attempts"],
            story["idempotency_keys"],
            [t["to"] for t in story["transitions"]],
        )

    def test_unknown_row_is_one_line_and_exit_2(
        self, redis_url: str, redis_client: redis.Redis, data_dir: Path
    ) -> None:
        """An unknown row ends with one error line naming it, exit 2, and no traceback."""
        batch_id = _failed_row(redis_client)
        env = outside_env(**ledger_env(redis_url, data_dir))

        proc = run_vsbatch(env, "explain", batch_id, "8")

        assert (2, [f"error: batch {batch_id} has no row 8 (its rows are 7 to 7)"], "") == (
            proc.returncode,
            proc.stderr.splitlines(),
            proc.stdout,
        )

    def test_unknown_batch_is_one_line_and_exit_2(
        self, redis_url: str, redis_client: redis.Redis, data_dir: Path
    ) -> None:
        """An unknown batch ends with one error line, exit 2."""
        result = CliRunner().invoke(
            cli, ["explain", "b_nope:3"], env=ledger_env(redis_url, data_dir)
        )

        assert (2, ["error: no batch b_nope (unknown or expired)"]) == (
            result.exit_code,
            result.stderr.splitlines(),
        )

    def test_malformed_id_is_a_usage_error(
        self, redis_url: str, redis_client: redis.Redis, data_dir: Path
    ) -> None:
        """A row that is not a positive number is one line, exit 2."""
        result = CliRunner().invoke(
            cli, ["explain", "b_x:seven"], env=ledger_env(redis_url, data_dir)
        )

        assert (2, 1, True) == (
            result.exit_code,
            len(result.stderr.splitlines()),
            "BATCH ROW or BATCH:ROW" in result.stderr,
        ), result.stderr
