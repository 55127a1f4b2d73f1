"""Applying a fault schedule to a rig, on time: process faults strike, emulator faults hold.

The explorer's loop calls :meth:`Timeline.fire_due` with the seconds since the first row
finished; each fault starts at its offset and, if it lasts, is undone when it lapses (a stopped
worker continued, Redis started again, an emulator window closed). Emulator windows may
overlap: the config is always the base plus every open window, in the order they opened.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.harness import Rig, Worker, resume_all
from tests.reliability.schedule import Fault

__all__ = ["BASE_EMULATOR", "Timeline"]

# Every run's emulator: no rate limit of its own (the fleet's 10/s holds) and some latency, so
# that requests overlap and a window's faults meet requests in flight.
BASE_EMULATOR: dict[str, Any] = {"rate_limit": 0, "latency_ms": 40, "latency_jitter_ms": 20}


@dataclass(order=True)
class _Action:
    at: float
    index: int  # the fault's place in the schedule
    start: bool = field(compare=False)


class Timeline:
    """Applies a schedule to a rig: each fault's start at its offset, its end when it lapses."""

    def __init__(
        self, rig: Rig, schedule: Sequence[Fault], fleet: list[Worker], concurrency: int
    ) -> None:
        self.rig = rig
        self.schedule = list(schedule)
        self.fleet = fleet
        self.concurrency = concurrency
        self.pending: list[_Action] = []
        for i, fault in enumerate(schedule):
            self.pending.append(_Action(fault.at, i, True))
            if fault.lasts > 0:
                self.pending.append(_Action(fault.at + fault.lasts, i, False))
        self.pending.sort()
        self.struck: set[int] = set()
        self.stopped: dict[int, Worker] = {}
        self.windows: list[int] = []
        self.redis_down = False
        self.injected: Counter[str] = Counter()

    def fire_due(self, elapsed: float) -> None:
        """Run every action whose time has come."""
        while self.pending and self.pending[0].at <= elapsed:
            self._run(self.pending.pop(0))

    def finish(self) -> None:
        """Undo what still holds (windows, stopped workers, Redis down); drop unstarted faults."""
        for action in [a for a in self.pending if not a.start and a.index in self.struck]:
            self._run(action)
        self.pending.clear()
        self.windows.clear()
        self._configure_emulator()
        resume_all(self.rig.workers)

    def _run(self, action: _Action) -> None:
        fault = self.schedule[action.index]
        if action.start:
            if self._strike(action.index, fault):
                self.struck.add(action.index)
                self.injected[fault.kind] += 1
        elif action.index in self.struck:
            self._undo(action.index, fault)

    def _worker(self, fault: Fault) -> int:
        return int(fault.params["worker"]) % len(self.fleet)

    def _strike(self, index: int, fault: Fault) -> bool:
        rig = self.rig
        if fault.kind in ("worker_kill", "worker_term"):
            slot = self._worker(fault)
            sig = signal.SIGKILL if fault.kind == "worker_kill" else signal.SIGTERM
            self.fleet[slot].send_signal(sig)  # a stopped worker dies at once, or on SIGCONT
            self.fleet[slot] = rig.workers.start(concurrency=self.concurrency)
        elif fault.kind == "worker_stop":
            proc = self.fleet[self._worker(fault)]
            proc.send_signal(signal.SIGSTOP)
            self.stopped[index] = proc
        elif fault.kind in ("redis_restart", "redis_kill"):
            if self.redis_down:
                return False  # one Redis outage at a time
            if fault.kind == "redis_kill":
                rig.redis.kill()
            else:
                rig.redis.stop()
            self.redis_down = True
            if fault.lasts <= 0:
                self._undo(index, fault)
        else:
            self.windows.append(index)
            self._configure_emulator()
        return True

    def _undo(self, index: int, fault: Fault) -> None:
        if fault.kind == "worker_stop":
            self.stopped.pop(index).send_signal(signal.SIGCONT)
        elif fault.kind in ("redis_restart", "redis_kill"):
            self.rig.redis.restart()
            self.redis_down = False
        elif index in self.windows:
            self.windows.remove(index)
            self._configure_emulator()

    def _configure_emulator(self) -> None:
        # The base, then each holding window in the order it began (a later one wins a field).
        fields = dict(BASE_EMULATOR)
        for index in self.windows:
            fields.update(self.schedule[index].emulator_fields())
        defaults = {k: v for k, v in _EMULATOR_DEFAULTS.items() if k not in fields}
        self.rig.emulator.configure(**fields, **defaults)


# Every field a window may set, back to its value when no window holds it.
_EMULATOR_DEFAULTS: dict[str, Any] = {
    "gateway_rate": 0.0,
    "gateway_answer": "502",
    "gateway_delay_seconds": 0.0,
    "fail_500_after_rate": 0.0,
    "hang_rate": 0.0,
    "hang_seconds": 90.0,
    "hang_applies": True,
    "drop_rate": 0.0,
    "drop_applies": True,
    "lock_timeout_rate": 0.0,
    "fail_503_rate": 0.0,
}
