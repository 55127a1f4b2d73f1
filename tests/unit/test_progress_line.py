"""The progress line's detail: every final outcome's count and the current rate."""

from __future__ import annotations

from vsbatch.cli.progress import Rate, describe
from vsbatch.model.row import BatchInfo, BatchState, Outcome


def _batch(**counts: int) -> BatchInfo:
    return BatchInfo(
        id="b_1",
        name="t",
        kind="csv",
        source="t.csv",
        digest=None,
        account=None,
        created_at=0.0,
        state=BatchState.OPEN,
        total=10,
        counts={Outcome(k): v for k, v in counts.items()},
    )


class TestProgressLine:
    def test_line_counts_skipped_and_rejected_rows_and_shows_the_rate(self) -> None:
        """Skipped and rejected rows are counted beside succeeded and failed, then the rate."""
        line = describe(_batch(succeeded=3, skipped=2, failed=1, rejected=4), 2.5)

        assert "succeeded 3, skipped 2, failed 1, rejected 4 · 2.5 rows/s" == line

    def test_rate_is_over_the_recent_window_not_the_whole_run(self) -> None:
        """After a stall, the rate reflects the last window's rows, not the average."""
        rate = Rate(window=10.0)
        rate.add(0.0, 0)
        rate.add(10.0, 100)
        rate.add(20.0, 100)

        assert 0.0 == rate.add(30.0, 100)

    def test_rate_of_a_steady_run(self) -> None:
        """Rows finishing at 5 per second show as 5 rows/s."""
        rate = Rate(window=10.0)

        rates = [rate.add(float(t), 5 * t) for t in range(30)]

        assert 5.0 == rates[-1]
