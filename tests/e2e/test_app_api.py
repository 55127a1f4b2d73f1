"""The application API end to end: enqueue_update -> real workers -> emulator, in order."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.e2e.conftest import Workers
from vsbatch import Outcome, UpdateHandle, enqueue_update
from vsbatch.bootstrap import Deps

STEPS = 10


def update_for(step: int) -> dict[str, Any]:
    """Update ``step``: the step marker, plus a key of its own (lost if an older one is skipped)."""
    return {"metadata": {"step": str(step), f"k{step}": "x"}}


def enqueue_in_order(owned: list[list[str]], steps: int) -> list[UpdateHandle]:
    """One thread per group of sessions, each enqueueing steps 0..steps-1 per session in order."""
    handles: list[UpdateHandle] = []
    lock = threading.Lock()

    def produce(sessions: list[str]) -> None:
        mine = [enqueue_update(s, update_for(i)) for i in range(steps) for s in sessions]
        with lock:
            handles.extend(mine)

    threads = [threading.Thread(target=produce, args=(group,)) for group in owned]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return handles


def final_state(deps: Deps, session_id: str) -> dict[str, str]:
    return deps.stripe().retrieve(session_id).metadata


EXPECTED = {"step": str(STEPS - 1), **{f"k{i}": "x" for i in range(STEPS)}}


class TestOrdering:
    def test_each_session_ends_in_its_last_update(
        self, emulator: Any, workers: Workers, producer: Deps
    ) -> None:
        """200 updates to 20 sessions from 4 threads apply in submission order per session."""
        # Given 20 sessions, each owned by one of 4 producing threads, and two workers
        emulator.configure(rate_limit=0)
        ids = emulator.seed(count=20)
        workers.start(concurrency=8)
        workers.start(concurrency=8)

        # When every thread enqueues 10 updates per session, in order
        handles = enqueue_in_order([ids[i::4] for i in range(4)], STEPS)
        records = [h.wait(timeout=60) for h in handles]

        # Then all applied, each once, and each session holds every key and the last step
        assert 200 == len({h.id for h in handles})
        assert {Outcome.SUCCEEDED} == {r.outcome for r in records}
        assert {s: STEPS for s in ids} == emulator.stats()["applied"]
        assert [EXPECTED] * 20 == [final_state(producer, s) for s in ids]


class TestDeduplication:
    def test_same_key_applies_once(self, emulator: Any, workers: Workers, producer: Deps) -> None:
        """Two calls with one key (from two threads) are one update, applied once."""
        (sid,) = emulator.seed(count=1)
        workers.start()
        handles: list[UpdateHandle] = []

        def call() -> None:
            handles.append(enqueue_update(sid, {"metadata": {"a": "1"}}, key="order-42"))

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        again = enqueue_update(sid, {"metadata": {"a": "1"}}, key="order-42")
        record = again.wait(timeout=30)

        assert ({again.id}, Outcome.SUCCEEDED) == ({h.id for h in handles}, record.outcome)
        assert {sid: 1} == emulator.stats()["applied"]

    def test_other_keys_are_other_updates(
        self, emulator: Any, workers: Workers, producer: Deps
    ) -> None:
        """Distinct keys are distinct updates of the same session, both applied."""
        (sid,) = emulator.seed(count=1)
        workers.start()

        first = enqueue_update(sid, {"metadata": {"a": "1"}}, key="k-1")
        second = enqueue_update(sid, {"metadata": {"a": "2"}}, key="k-2")
        records = [first.wait(timeout=30), second.wait(timeout=30)]

        assert [Outcome.SUCCEEDED] * 2 == [r.outcome for r in records]
        assert ({sid: 2}, {"a": "2"}) == (emulator.stats()["applied"], final_state(producer, sid))


def outlive_retry_window(handles: list[UpdateHandle], attempts: int) -> list[Any]:
    """Records once some row has made more attempts than one in-task retry window allows."""
    deadline = time.monotonic() + 40
    while True:
        records = [h.outcome() for h in handles]
        if max(r.attempts for r in records) > attempts or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


class TestOutage:
    def test_outage_longer_than_retry_window_loses_nothing(
        self, emulator: Any, workers: Workers, producer: Deps
    ) -> None:
        """All-503 for longer than the in-task retry window, then recovery: every update applies."""
        # Given workers whose in-task retries give up after 3 attempts or 2 s
        emulator.configure(rate_limit=0)
        ids = emulator.seed(count=5)
        workers.start(VSBATCH_RETRY_MAX_SECONDS="2", VSBATCH_MAX_ATTEMPTS="3")
        emulator.configure(fail_503_rate=1.0)

        # When 4 ordered updates per session are enqueued during the outage
        handles = enqueue_in_order([ids], 4)
        during = outlive_retry_window(handles, attempts=3)
        emulator.configure(fail_503_rate=0.0)
        records = [h.wait(timeout=60) for h in handles]

        # Then nothing ended during the outage, the first rows outlived their retry window,
        # and after recovery every update applied, in order
        assert set() == {r.outcome for r in during if r.is_terminal}
        assert max(r.attempts for r in during) > 3
        assert {Outcome.SUCCEEDED} == {r.outcome for r in records}
        expected = {"step": "3", **{f"k{i}": "x" for i in range(4)}}
        assert [expected] * 5 == [final_state(producer, s) for s in ids]
        assert {s: 4 for s in ids} == emulator.stats()["applied"]
