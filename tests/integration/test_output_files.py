"""``report -o`` and ``failures -o``: a file written whole or not at all, one line on failure.

A missing directory, and a write that fails half way (the process's file size limit, as a
full disk would), end in one error line with exit code 2, leave no partial or empty file,
and leave an existing file at the target as it was.
"""

from __future__ import annotations

import resource
import signal
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from tests.helpers import ledger_env as _env
from tests.helpers import outside_env, run_vsbatch
from vsbatch.cli.main import cli
from vsbatch.model.row import NewRow, Outcome
from vsbatch.store.ledger import Ledger

ID = "vs_1AAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture
def batch_id(redis_client: redis.Redis) -> str:
    """A finished batch of 3,000 rejected rows with long reasons (about 1 MB of report)."""
    ledger = Ledger(redis_client)
    batch = ledger.create_batch(name="big", kind="csv", source="x.csv")
    rows = (
        NewRow(n, f"vs_{n}", None, None, rejection=("type", f"bad value {'x' * 300}"))
        for n in range(2, 3002)
    )
    ledger.add_rows(batch.id, rows)
    ledger.open_batch(batch.id)
    return batch.id


@pytest.mark.parametrize("command", ["report", "failures"])
class TestOutputFiles:
    def test_missing_directory_is_one_line_exit_2(
        self, command: str, batch_id: str, redis_url: str, data_dir: Path, tmp_path: Path
    ) -> None:
        """``-o`` into a directory that does not exist: one line naming it, exit 2, no file."""
        target = tmp_path / "missing" / "out.csv"
        args = [command, batch_id, "-o", str(target)]
        if command == "report":
            args += ["--format", "csv"]

        result = CliRunner().invoke(cli, args, env=_env(redis_url, data_dir))

        assert 2 == result.exit_code, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        lines = result.output.strip().splitlines()
        assert 1 == len(lines) and lines[0].startswith("error: cannot write"), lines
        assert str(target) in result.output.replace("\n", "")
        assert not target.parent.exists()

    def test_write_failing_half_way_leaves_the_old_file(
        self, command: str, batch_id: str, redis_url: str, data_dir: Path, tmp_path: Path
    ) -> None:
        """A write that fails half way ends in one line, exit 2; the old file stays whole."""
        target = tmp_path / "exports" / "out.csv"
        target.parent.mkdir()
        target.write_text("previous contents\n")
        env = outside_env(**_env(redis_url, data_dir))
        args = [command, batch_id, "-o", str(target)]
        if command == "report":
            args += ["--format", "csv"]

        def limit_file_size() -> None:  # as a full disk: writes past 64 KiB fail
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

        done = run_vsbatch(env, *args, preexec_fn=limit_file_size)

        assert 2 == done.returncode, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("error: cannot write"), done.stderr
        assert "previous contents\n" == target.read_text()
        assert ["out.csv"] == sorted(p.name for p in target.parent.iterdir())


TRICKY = {
    "metadata": {"a": " !unset ", "b": "  ", "c": "'=x", "d": "=1+2", "e": "line\nbreak "},
    "provided_details": {"email": " a@example.com ", "phone": "+15555550100"},
}


def test_failures_file_resubmits_every_update_unchanged(
    redis_client: redis.Redis, redis_url: str, data_dir: Path, tmp_path: Path, emulator: Any
) -> None:
    """``failures -o`` then ``submit`` of that file stages exactly the updates that failed."""
    ledger = Ledger(redis_client)
    batch = ledger.create_batch(name="b", kind="csv", source="x.csv")
    ledger.add_rows(batch.id, [NewRow(2, ID, None, TRICKY, idempotency_key="k")])
    ledger.open_batch(batch.id)
    ledger.transition(batch.id, 2, Outcome.FAILED, error_message="boom", retryable=True)
    path = tmp_path / "failures.csv"
    env = {**_env(redis_url, data_dir), "VSBATCH_STRIPE_API_BASE": emulator.url}

    exported = CliRunner().invoke(cli, ["failures", batch.id, "-o", str(path)], env=env)
    submitted = CliRunner().invoke(cli, ["submit", str(path), "--new"], env=env)

    assert (0, 0) == (exported.exit_code, submitted.exit_code), exported.output + submitted.output
    child = submitted.output.strip().splitlines()[-1]
    assert [TRICKY] == [record.params for record in ledger.iter_rows(child)]
