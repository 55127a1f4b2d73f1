"""Human output of ``status`` and ``report``: text for people, the same reason in every format.

CliRunner over the real test Redis; rows written straight to the ledger with empty fields.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from tests.helpers import ledger_env as _env
from vsbatch.cli.main import cli
from vsbatch.model.row import NewRow, Outcome
from vsbatch.store.ledger import Ledger


@pytest.fixture
def batch_id(redis_client: redis.Redis) -> str:
    """A finished batch with metadata updates whose rows end with most fields empty."""
    ledger = Ledger(redis_client)
    batch = ledger.create_batch(name="sparse", kind="csv", source="x.csv")
    params = {"metadata": {"a": "b"}}
    ledger.add_rows(
        batch.id,
        [
            NewRow(2, "vs_sparse_a", None, params, idempotency_key="k2"),
            NewRow(3, "vs_sparse_b", None, params, idempotency_key="k3"),
            NewRow(4, "vs_sparse_c", None, params, idempotency_key="k4"),
        ],
    )
    ledger.open_batch(batch.id)
    ledger.transition(batch.id, 2, Outcome.SKIPPED)
    ledger.transition(batch.id, 3, Outcome.FAILED, error_type="APIConnectionError")
    ledger.transition(
        batch.id, 4, Outcome.FAILED, error_code="resource_missing", error_message="No such x"
    )
    return batch.id


class TestHumanOutput:
    @pytest.mark.parametrize(
        "args", [["status"], ["status", "{id}"], ["report", "{id}"]], ids=" ".join
    )
    def test_no_python_reprs_for_empty_fields_and_metadata(
        self, args: list[str], batch_id: str, redis_url: str, data_dir: Path
    ) -> None:
        """Empty fields and metadata never show as ``None`` or a Python dict."""
        argv = [a.format(id=batch_id) for a in args]

        result = CliRunner().invoke(cli, argv, env=_env(redis_url, data_dir))

        # The batch list exits 0; a batch's own status or report exits by the run table (failed).
        assert (0 if argv == ["status"] else 1) == result.exit_code, result.output
        assert "None" not in result.output and "{'" not in result.output, result.output

    def test_json_and_csv_give_each_row_the_same_reason(
        self, batch_id: str, redis_url: str, data_dir: Path
    ) -> None:
        """The report's ``reason`` is the same text in JSON and in CSV for every row."""
        env = _env(redis_url, data_dir)
        as_json = CliRunner().invoke(cli, ["report", batch_id, "-f", "json"], env=env)
        as_csv = CliRunner().invoke(cli, ["report", batch_id, "-f", "csv"], env=env)

        from_json = {r["row"]: r["reason"] or "" for r in json.loads(as_json.stdout)["rows"]}
        from_csv = {int(r["row"]): r["reason"] for r in csv.DictReader(io.StringIO(as_csv.stdout))}

        assert from_json == from_csv
        assert ("", "APIConnectionError", "resource_missing") == (
            from_csv[2],
            from_csv[3],
            from_csv[4],
        )


class TestPlanOutput:
    def test_plan_shows_values_as_text_not_python_reprs(
        self, emulator: Any, redis_url: str, data_dir: Path, tmp_path: Path
    ) -> None:
        """Plan writes a field that was never set and the metadata it clears as text, not as
        ``None`` or a Python dict."""
        # Given one session without metadata and one with metadata {"a": "b"}
        [bare] = emulator.seed(count=1)
        [tagged] = emulator.seed(count=1, metadata={"a": "b"})
        path = tmp_path / "in.csv"
        path.write_text(f"id,metadata.tier,metadata\n{bare},gold,\n{tagged},,!unset\n")
        env = {**_env(redis_url, data_dir), "VSBATCH_STRIPE_API_BASE": emulator.url}

        # When the file is planned
        result = CliRunner().invoke(cli, ["plan", str(path)], env=env, terminal_width=200)

        # Then both changes read as text
        assert 0 == result.exit_code, result.output
        assert "metadata.tier: (unset) -> gold" in result.output
        assert 'metadata: {"a": "b"} -> (unset)' in result.output
        assert "None" not in result.output and "{'" not in result.output
