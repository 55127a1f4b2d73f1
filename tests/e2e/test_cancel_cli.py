"""``vsbatch cancel`` as an operator runs it: real processes, the embedded Redis, no workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.test_cli import _env, tier_csv, vsbatch


class TestCancelCommand:
    def test_cancel_ends_unsent_rows_at_once_and_says_so(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """With no worker running, cancel ends the submitted rows skipped (batch_canceled) and
        its one line says how many rows it ended and how many are left in flight."""
        # Given a file submitted for workers that never start
        env = _env(emulator, tmp_path / "data")
        submitted = vsbatch(env, "submit", str(tier_csv(tmp_path, *emulator.seed(count=2))))
        assert 0 == submitted.returncode, submitted.stderr
        batch_id = submitted.stdout.strip()

        # When the operator cancels it
        canceled = vsbatch(env, "cancel", batch_id)
        status = vsbatch(env, "status")

        # Then both rows ended at once, and no update was applied
        assert 0 == canceled.returncode, canceled.stderr
        expected = f"batch {batch_id} canceled: 2 rows never sent end skipped (batch_canceled)"
        assert [expected] == canceled.stdout.strip().splitlines()
        assert "skipped 2" in status.stdout, status.stdout
        assert {} == emulator.stats()["applied"]

    def test_cancel_of_a_done_batch_says_nothing_changed(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """Canceling a batch that already finished changes nothing and says so."""
        env = _env(emulator, tmp_path / "data")
        ran = vsbatch(
            env, "run", "--format", "json", str(tier_csv(tmp_path, *emulator.seed(count=1)))
        )
        assert 0 == ran.returncode, ran.stderr
        batch_id = vsbatch(env, "status").stdout.split()[0]

        canceled = vsbatch(env, "cancel", batch_id)

        assert 0 == canceled.returncode, canceled.stderr
        assert [f"batch {batch_id} is done: nothing to cancel"] == canceled.stdout.splitlines()
