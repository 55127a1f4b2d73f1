"""The live view of ``status --watch`` without Redis or sleeping: rates from counter deltas
over an injected clock, and what the renderer draws (terminal and plain lines)."""

from __future__ import annotations

import io
import re

from rich.console import Console

from vsbatch.cli.live_render import plain_lines, render, watch
from vsbatch.model.row import BatchInfo, BatchState, Outcome
from vsbatch.ops.live_view import AccountLimit, RateWindow, Snapshot, View, batch_rates

ANSI = re.compile("\x1b\\[")


def batch(
    bid: str, done: int, total: int = 100, *, account: str | None = None, failed: int = 0
) -> BatchInfo:
    """An open batch with ``done`` rows succeeded, ``failed`` failed, the rest queued."""
    counts = dict.fromkeys(Outcome, 0)
    counts[Outcome.SUCCEEDED] = done
    counts[Outcome.FAILED] = failed
    counts[Outcome.QUEUED] = total - done - failed
    state = BatchState.DONE if done + failed >= total else BatchState.OPEN
    return BatchInfo(bid, f"name-{bid}", "csv", "x.csv", None, account, 1.0, state, total, counts)


def snap(at: float, *batches: BatchInfo, **extra: object) -> Snapshot:
    return Snapshot(at, tuple(batches), **extra)  # type: ignore[arg-type]


def drawn(view: View) -> str:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    console.print(render(view))
    return ANSI.sub("", console.file.getvalue())  # type: ignore[attr-defined]


class TestRates:
    def test_rate_is_the_counter_delta_over_the_clock_delta(self) -> None:
        """A batch that finished 30 more rows in 2 s runs at 15 rows/s."""
        older, newer = snap(10.0, batch("b1", 10)), snap(12.0, batch("b1", 40))

        assert {"b1": 15.0} == batch_rates(older, newer)

    def test_a_batch_first_seen_has_no_rate_yet(self) -> None:
        """Rows final before the first look (rejected at intake) are not a rate."""
        older, newer = snap(10.0), snap(11.0, batch("b1", 50))

        assert {"b1": 0.0} == batch_rates(older, newer)

    def test_accounts_sum_their_batches(self) -> None:
        """Two batches of one account add up; another account keeps its own rate."""
        older = snap(
            0.0, batch("a1", 0, account="acct_1"), batch("a2", 0, account="acct_1"), batch("p", 0)
        )
        newer = snap(
            2.0, batch("a1", 4, account="acct_1"), batch("a2", 6, account="acct_1"), batch("p", 2)
        )

        view = View(newer, batch_rates(older, newer))

        assert {"acct_1": 5.0, "platform": 1.0} == view.account_rates

    def test_window_compares_with_the_oldest_snapshot_inside_it(self) -> None:
        """Past the window the rate is the recent one, not the run's average."""
        # Given 0 rows at t=0 and 100 rows by t=5 (20/s), then 10 rows/s from t=5
        window = RateWindow(window=10.0)
        window.add(snap(0.0, batch("b", 0, 1000)))
        window.add(snap(5.0, batch("b", 100, 1000)))
        window.add(snap(15.0, batch("b", 200, 1000)))

        # When a snapshot comes at t=25
        view = window.add(snap(25.0, batch("b", 300, 1000)))

        # Then the rate is over t=15..25 only
        assert {"b": 10.0} == view.rates


class TestRender:
    def test_terminal_view_shows_rates_limits_counters_reasons_and_workers(self) -> None:
        """The full view names each part the issue asks for."""
        older = snap(0.0, batch("b_one", 10, failed=1, account="acct_9"))
        newer = snap(
            2.0,
            batch("b_one", 30, failed=3, account="acct_9"),
            reasons=(("resource_missing", 2), ("APIConnectionError", 1)),
            workers=2,
            limits={"acct_9": AccountLimit(20.0, 20.0)},
        )

        text = drawn(View(newer, batch_rates(older, newer)))

        expected = [
            "2 workers alive",
            "acct_9",
            "11.0",
            "20/s",
            "b_one",
            "33/100",
            "resource_missing",
            "APIConnectionError",
        ]
        assert [] == [part for part in expected if part not in text]

    def test_a_cut_limit_shows_the_current_and_the_configured_rate(self) -> None:
        """After a 429 the limiter's lower rate is shown against its ceiling."""
        newer = snap(0.0, batch("b", 1), limits={"platform": AccountLimit(20.0, 12.5)})

        assert "12.5/s (of 20/s)" in drawn(View(newer, {}))

    def test_markup_in_a_batch_name_is_shown_as_text(self) -> None:
        """A batch named ``[red]x[/red]`` is printed literally."""
        hostile = batch("b", 1)
        hostile = BatchInfo(**{**hostile.__dict__, "name": "[red]x[/red]"})

        assert "[red]x[/red]" in drawn(View(snap(0.0, hostile), {}))

    def test_no_open_batch_says_so(self) -> None:
        """With nothing open the view says so, and how many workers are alive."""
        text = drawn(View(snap(0.0, workers=0), {}))

        assert ("no open batch", "0 workers alive") == (
            "no open batch" if "no open batch" in text else text,
            "0 workers alive" if "0 workers alive" in text else text,
        )

    def test_plain_lines_are_one_per_batch(self) -> None:
        """A pipe gets one line per batch with its counters and rate."""
        view = View(snap(0.0, batch("b1", 5), batch("b2", 7), workers=1), {"b1": 2.5})

        lines = plain_lines(view)

        assert [
            "b1 open 5/100 · succeeded 5, skipped 0, failed 0, rejected 0, queued 95, running 0,"
            " retrying 0 · 2.5 rows/s · account platform limit - · 1 worker alive",
            "b2 open 7/100 · succeeded 7, skipped 0, failed 0, rejected 0, queued 93, running 0,"
            " retrying 0 · 0.0 rows/s · account platform limit - · 1 worker alive",
        ] == lines


class TestWatch:
    def test_not_a_terminal_prints_plain_lines_each_refresh_until_done(self) -> None:
        """Piped, each refresh prints one plain line per batch, no ANSI, until done."""
        # Given a batch that finishes on the third read, and a fake clock
        reads = iter([batch("b", 0, 4), batch("b", 2, 4), batch("b", 4, 4)])
        now = [0.0]
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            now[0] += seconds

        console = Console(file=io.StringIO(), width=200)

        # When watching until every row is final
        last = watch(
            lambda: snap(now[0], next(reads)),
            console,
            done=lambda s: all(b.terminal >= b.total for b in s.batches),
            clock=lambda: now[0],
            sleep=sleep,
        )

        # Then three lines, a second apart, the last one final
        lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
        assert (3, [1.0, 1.0], 4, []) == (
            len(lines),
            slept,
            last.batches[0].terminal,
            [line for line in lines if ANSI.search(line)],
        )
