"""The dashboard's row filter and its live stream, without a server."""

from __future__ import annotations

import asyncio
import json

from vsbatch.errors import ConfigError
from vsbatch.model.row import Outcome, RowRecord
from vsbatch.web.data import RowFilter
from vsbatch.web.events import counters_stream


def _row(outcome: Outcome, session_id: str = "vs_A1", **fields: object) -> RowRecord:
    return RowRecord("b_1", 2, session_id, None, {}, None, 1, outcome, **fields)  # type: ignore[arg-type]


class TestRowFilter:
    def test_empty_filter_keeps_everything(self) -> None:
        """No field set: every row passes."""
        assert RowFilter().keeps(_row(Outcome.QUEUED))

    def test_fields_combine(self) -> None:
        """Outcome, reason and session id must all match."""
        row = _row(Outcome.FAILED, "vs_Abc123", error_code="resource_missing")

        assert [True, False, False, True] == [
            RowFilter(Outcome.FAILED, "missing", "Abc").keeps(row),
            RowFilter(Outcome.SKIPPED).keeps(row),
            RowFilter(session="Zzz").keeps(row),
            RowFilter(reason="resource_").keeps(row),
        ]

    def test_reason_matches_the_message_shown(self) -> None:
        """Text of the message the page shows (not only the short reason) finds the row."""
        row = _row(Outcome.FAILED, error_code="api_error", error_message="upstream went away")

        assert RowFilter(reason="went away").keeps(row)


def _messages(feed: object, ticks: int) -> list[str]:
    """The stream's first messages, the browser leaving after ``ticks`` reads."""
    seen: list[str] = []

    async def gone() -> bool:
        return len(seen) > ticks

    async def read() -> None:
        async for message in counters_stream(feed, 0.0, gone):  # type: ignore[arg-type]
            seen.append(message)

    asyncio.run(read())
    return seen


class TestCountersStream:
    def test_each_tick_is_one_counters_event_of_json(self) -> None:
        """After the reconnect delay, each tick sends one ``counters`` event with the feed's
        JSON on one data line."""
        messages = _messages(lambda: {"batches": [], "workers": 2}, 2)

        assert "retry: 2000\n\n" == messages[0]
        event, data = messages[1].rstrip("\n").split("\n")
        assert ("event: counters", {"batches": [], "workers": 2}) == (
            event,
            json.loads(data.removeprefix("data: ")),
        )

    def test_a_failed_read_is_a_trouble_event_and_the_stream_goes_on(self) -> None:
        """A read that raises sends ``trouble`` with the one line, then keeps ticking."""

        def feed() -> dict[str, object]:
            raise ConfigError("no Redis configured: set VSBATCH_REDIS_URL")

        messages = _messages(feed, 2)

        assert ["event: trouble", "event: trouble"] == [m.split("\n")[0] for m in messages[1:3]]
        assert "no Redis configured" in messages[1]
