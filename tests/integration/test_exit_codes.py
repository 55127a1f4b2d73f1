"""Exit codes follow one table (0 all applied or skipped, 1 rows failed, 2 rejected/usage)
in every command that reports on a batch, and a reader leaving a pipe early is not a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis
from typer.testing import CliRunner

from tests.conftest import TEST_API_KEY
from vsbatch.cli.main import cli
from vsbatch.model.row import NewRow
from vsbatch.store.ledger import Ledger

GOOD = "vs_1GOODAAAAAAAAAAAAAAAAAAA"


def _env(redis_url: str, data_dir: Path, api_base: str = "") -> dict[str, str]:
    env = {
        "VSBATCH_REDIS_URL": redis_url,
        "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
        "VSBATCH_DATA_DIR": str(data_dir),
        "VSBATCH_LOG_FORMAT": "text",
    }
    return {**env, "VSBATCH_STRIPE_API_BASE": api_base} if api_base else env


def _rejected_only(redis_client: redis.Redis) -> str:
    ledger = Ledger(redis_client)
    batch = ledger.create_batch(name="r", kind="csv", source="x.csv")
    ledger.add_rows(batch.id, [NewRow(2, "vs_bad-1", None, None, rejection=("id", "bad id"))])
    ledger.open_batch(batch.id)
    return batch.id


class TestRejectedRows:
    def test_submit_with_rejected_rows_exits_2_and_still_prints_the_batch(
        self,
        redis_url: str,
        redis_client: redis.Redis,
        emulator: Any,
        data_dir: Path,
        tmp_path: Path,
    ) -> None:
        """submit prints the batch id on stdout, one line on stderr, and exits 2."""
        csv = tmp_path / "a.csv"
        csv.write_text(f"id,metadata.x\n{GOOD},1\nvs_bad-1,2\n", encoding="utf-8")

        result = CliRunner().invoke(
            cli, ["submit", str(csv)], env=_env(redis_url, data_dir, emulator.url)
        )

        batch_id = result.stdout.strip()
        assert (2, True) == (result.exit_code, batch_id.startswith("b_")), result.output
        assert f"1 row(s) rejected: 'vsbatch failures {batch_id}'" in result.stderr

    def test_report_and_status_of_rejected_rows_exit_2(
        self, redis_url: str, redis_client: redis.Redis, data_dir: Path
    ) -> None:
        """report and status of a batch follow the same table as run: rejected rows are 2."""
        batch_id = _rejected_only(redis_client)
        env = _env(redis_url, data_dir)

        codes = [
            CliRunner().invoke(cli, [*args, batch_id], env=env).exit_code
            for args in (["report"], ["status"])
        ]

        assert [2, 2] == codes


class TestClosedPipe:
    def test_reader_leaving_early_is_a_quiet_141(
        self, redis_url: str, redis_client: redis.Redis, data_dir: Path
    ) -> None:
        """status into a pipe already closed ends with 141 (SIGPIPE), no traceback, no text."""
        batch_id = _rejected_only(redis_client)
        read, write = os.pipe()
        os.close(read)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("VSBATCH_", "STRIPE_"))}
        try:
            result = subprocess.run(
                [sys.executable, "-m", "vsbatch", "report", batch_id],
                env={**base, **_env(redis_url, data_dir)},
                stdout=write,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
            )
        finally:
            os.close(write)

        assert (141, "") == (result.returncode, result.stderr)
