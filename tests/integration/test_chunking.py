"""How a batch is cut into chunk messages: big chunks first, single rows at the end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.integration.test_resume import Enqueued, write_csv
from vsbatch.bootstrap import Deps
from vsbatch.intake.chunks import SPREAD
from vsbatch.intake.stage import submit_csv


class TestChunking:
    def test_chunks_shrink_to_single_rows_at_the_end(self, deps: Deps, tmp_path: Path) -> None:
        """A batch's last SPREAD messages hold one row each, so its tail spreads over every
        thread instead of running row after row in the few threads holding the last chunks."""
        # Given a 3,000-row file and chunks of at most 10 rows
        small = replace(deps, settings=deps.settings.model_copy(update={"chunk_size": 10}))
        path = write_csv(tmp_path / "big.csv", [f"vs_{n:024d}" for n in range(3000)])
        enqueued = Enqueued()

        submit_csv(small, path, enqueued)

        sizes = [len(rows) for _, rows, _ in enqueued.calls]
        assert (10, 1) == (sizes[0], max(sizes[-SPREAD:]))
        assert list(range(2, 3002)) == enqueued.rows  # every row once, in order

    def test_messages_stay_few(self, deps: Deps, tmp_path: Path) -> None:
        """Shrinking the tail adds at most about SPREAD x ln(chunk size) messages."""
        small = replace(deps, settings=deps.settings.model_copy(update={"chunk_size": 10}))
        path = write_csv(tmp_path / "big.csv", [f"vs_{n:024d}" for n in range(3000)])
        enqueued = Enqueued()

        submit_csv(small, path, enqueued)

        assert len(enqueued.calls) <= 3000 / 10 + SPREAD * 4

    def test_each_message_holds_one_accounts_rows(self, deps: Deps, tmp_path: Path) -> None:
        """Rows of connected accounts interleaved in the file go out in chunks of one account
        each (a mixed chunk holds its thread on one account's rate slot while the others'
        rows wait behind it), every row once and each account's rows in file order."""
        # Given 1,000 rows of four accounts, interleaved as a platform's export lists them
        accounts = [f"acct_{n}" for n in range(4)]
        path = tmp_path / "accounts.csv"
        lines = [f"vs_{n:024d},{accounts[n % 4]},v\n" for n in range(1000)]
        path.write_text("id,stripe_account,metadata.k\n" + "".join(lines), encoding="utf-8")
        enqueued = Enqueued()

        # When it is submitted
        batch = submit_csv(deps, path, enqueued)

        # Then no message mixes accounts, and nothing is lost or reordered within an account
        account_of = {r.row: r.account for r in deps.ledger.iter_rows(batch.id)}
        mixed = [rows for _, rows, _ in enqueued.calls if len({account_of[r] for r in rows}) > 1]
        per_account = {a: [r for r in enqueued.rows if account_of[r] == a] for a in accounts}
        assert ([], list(range(2, 1002))) == (mixed, sorted(enqueued.rows))
        assert all(rows == sorted(rows) for rows in per_account.values())
