"""The application API without Redis: exports, validation at once, and waiting on a handle."""

from __future__ import annotations

import types
from typing import Any, cast

import pytest

import vsbatch
from vsbatch import InvalidUpdate, Outcome, RowRecord, UpdateHandle, UpdateTimeout, enqueue_update
from vsbatch.store.ledger import Ledger

SID = "vs_1" + "0" * 23


def test_exported_members() -> None:
    """``__all__`` lists exactly the package's public names (as httpx checks its own)."""
    # dir(), not vars(): the names are imported on first use (the package's ``__getattr__``).
    public = sorted(
        name
        for name in dir(vsbatch)
        if not name.startswith("_") and not isinstance(getattr(vsbatch, name), types.ModuleType)
    )

    assert public == sorted(vsbatch.__all__)


class FakeLedger:
    """Serves scripted outcomes for one row, one per read."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)

    def get_row(self, batch_id: str, row: int) -> RowRecord:
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        return RowRecord(batch_id, row, SID, None, {}, None, 1, outcome)


class Clock:
    """A clock that sleeping moves forward."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def handle(*outcomes: Outcome) -> UpdateHandle:
    return UpdateHandle("b_1", 1, cast(Ledger, FakeLedger(*outcomes)))


class TestEnqueueValidation:
    @pytest.mark.parametrize(
        ("args", "kwargs", "field"),
        [
            ((SID, {"metadata": {"a[0]": "x"}}), {}, "metadata"),
            ((SID, {"status": "verified"}), {}, "status"),
            (("vs_1/../x", {"type": "document"}), {}, "id"),
            ((SID, {"type": "document"}), {"account": "platform"}, "account"),
            ((SID, {"type": "document"}), {"key": ""}, "key"),
        ],
    )
    def test_invalid_input_raises_before_any_io(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], field: str
    ) -> None:
        """A bad update, id, account or key raises InvalidUpdate without settings or Redis."""
        with pytest.raises(InvalidUpdate) as info:
            enqueue_update(*args, **kwargs)

        assert field == info.value.field


class TestHandle:
    def test_id_round_trips(self) -> None:
        """The handle's id is batch and row."""
        assert "b_1:1" == handle(Outcome.QUEUED).id

    def test_wait_returns_terminal_record(self) -> None:
        """wait polls until the row is terminal and returns its record."""
        clock = Clock()
        h = handle(Outcome.QUEUED, Outcome.RETRYING, Outcome.SUCCEEDED)

        record = h.wait(5, poll=0.25, clock=clock, sleep=clock.sleep)

        assert (Outcome.SUCCEEDED, [0.25, 0.25]) == (record.outcome, clock.slept)

    def test_wait_times_out(self) -> None:
        """A row still in flight at the deadline raises UpdateTimeout naming its outcome."""
        clock = Clock()

        with pytest.raises(UpdateTimeout) as info:
            handle(Outcome.RETRYING).wait(1.0, poll=0.3, clock=clock, sleep=clock.sleep)

        assert ("retrying", 1.0) == (info.value.outcome, clock.now)

    def test_done(self) -> None:
        """done is true only for terminal outcomes."""
        assert (False, True) == (handle(Outcome.RUNNING).done(), handle(Outcome.FAILED).done())
