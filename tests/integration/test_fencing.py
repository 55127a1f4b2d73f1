"""Fencing a stale worker: a lock taken over from a paused worker refuses its sends and writes.

A worker paused (SIGSTOP, a frozen VM, a long GC) past its heartbeat loses its session locks
to the fleet. These tests play that worker in a thread of this process: it stops inside
``process_row`` after deciding to send and before sending (in its rate limiter's wait), its
heartbeat disappears, the fleet moves on, and then it resumes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.errors import LockLostError
from vsbatch.model.row import NewRow, Outcome
from vsbatch.store.ledger import Ledger
from vsbatch.store.liveness import MISSED_BEATS
from vsbatch.store.locks import Fence, SessionLocks
from vsbatch.store.rate_limit import RedisRateLimiter, Slot
from vsbatch.worker.process_row import process_row
from vsbatch.worker.row_options import BUSY_DELAY, Later, RowOptions

SID = "vs_1" + "0" * 23
NODE = "host:1:paused"
HEARTBEAT_INTERVAL = 5.0  # Liveness's default


def batch_with(ledger: Ledger, session_id: str, params: dict[str, Any]) -> str:
    """An open batch with one queued row (row 1) for the session; returns its id."""
    batch = ledger.create_batch(name="t", kind="app", source="test")
    row = NewRow(1, session_id, None, params, idempotency_key=f"k-{batch.id}")
    ledger.add_rows(batch.id, [row])
    ledger.open_batch(batch.id)
    return batch.id


class PauseBeforeSend(RedisRateLimiter):
    """The fleet's limiter, except that the first wait for a slot stops until ``resume``:
    the worker is frozen after deciding to send its row and before sending it. Its clock
    jumps by the pause as the fleet saw it: a worker is declared dead only after missing
    ``MISSED_BEATS`` heartbeats, so the pause lasted at least that long."""

    def __init__(self, client: redis.Redis) -> None:
        self.skipped = 0.0
        super().__init__(client, rate=1000.0, clock=lambda: time.monotonic() + self.skipped)
        self.paused = threading.Event()
        self.resume = threading.Event()

    def wait(
        self, account: str | None, fence: Fence | None = None, slot: Slot | None = None
    ) -> float:
        if not self.paused.is_set():
            self.paused.set()
            self.resume.wait(timeout=30)
            self.skipped += MISSED_BEATS * HEARTBEAT_INTERVAL
        return super().wait(account, fence, slot)


class StaleWorker:
    """A worker process (its own locks, owner ``NODE``) running one row in a thread."""

    def __init__(self, fleet: Deps) -> None:
        self.deps = bootstrap(fleet.settings)
        self.deps.locks.owner = NODE
        self.limiter = PauseBeforeSend(self.deps.redis)
        self.deps.limiter = self.limiter
        self.alive = self.deps.ledger.keys.alive(NODE)
        self.deps.redis.set(self.alive, "1")
        self.result: Outcome | Later | None = None
        self._thread: threading.Thread | None = None

    def start(self, batch_id: str) -> None:
        """Run the row until the worker freezes just before sending."""

        def run() -> None:
            self.result = process_row(self.deps, batch_id, 1, options=RowOptions())

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert self.limiter.paused.wait(timeout=10)

    def declared_dead(self) -> None:
        """Its heartbeat expires: the fleet may take its locks over."""
        self.deps.redis.delete(self.alive)

    def resume(self) -> Outcome | Later | None:
        """SIGCONT: the worker goes on from where it stopped; returns what its row came to."""
        self.limiter.resume.set()
        assert self._thread is not None
        self._thread.join(timeout=30)
        return self.result

    def close(self) -> None:
        self.limiter.resume.set()
        self.deps.close()


@pytest.fixture
def stale(deps: Deps) -> Iterator[StaleWorker]:
    worker = StaleWorker(deps)
    try:
        yield worker
    finally:
        worker.close()


class TestFencedTransition:
    def test_stale_holder_cannot_finish_a_row_and_counters_do_not_move(
        self, deps: Deps, redis_client: redis.Redis
    ) -> None:
        """A finish fenced by a token that no longer holds the lock is refused: the new holder's
        record stays as it is and no counter moves."""
        # Given a row the new holder is running, after taking the lock over from the old one
        ledger, locks = deps.ledger, SessionLocks(redis_client)
        bid = batch_with(ledger, SID, {"metadata": {"v": "1"}})
        key = locks.keys.lock(None, SID)
        redis_client.set(key, "new-token")
        ledger.transition(bid, 1, Outcome.RUNNING, attempts=1, fence=Fence(key, "new-token"))
        before = (ledger.get_row(bid, 1), ledger.get_batch(bid).counts)

        # When the old holder tries to finish it
        with pytest.raises(LockLostError):
            ledger.transition(bid, 1, Outcome.FAILED, attempts=9, fence=Fence(key, "old-token"))

        # Then nothing changed
        assert before == (ledger.get_row(bid, 1), ledger.get_batch(bid).counts)

    def test_holder_finishes_a_row(self, deps: Deps, redis_client: redis.Redis) -> None:
        """A finish fenced by the token that holds the lock moves the row and its counters."""
        ledger = deps.ledger
        bid = batch_with(ledger, SID, {"metadata": {"v": "1"}})
        key = SessionLocks(redis_client).keys.lock(None, SID)
        redis_client.set(key, "token")

        moved = ledger.transition(bid, 1, Outcome.SUCCEEDED, fence=Fence(key, "token"))

        assert (True, 1) == (moved, ledger.get_batch(bid).counts[Outcome.SUCCEEDED])

    def test_a_released_lock_fences_too(self, deps: Deps, redis_client: redis.Redis) -> None:
        """Once the lock is gone (released by a new holder, or expired) the old token is stale."""
        ledger = deps.ledger
        bid = batch_with(ledger, SID, {"metadata": {"v": "1"}})
        key = SessionLocks(redis_client).keys.lock(None, SID)

        with pytest.raises(LockLostError):
            ledger.transition(bid, 1, Outcome.SUCCEEDED, fence=Fence(key, "token"))

        assert Outcome.QUEUED == ledger.get_row(bid, 1).outcome

    def test_writes_inside_a_fenced_block_are_fenced(
        self, deps: Deps, redis_client: redis.Redis
    ) -> None:
        """Inside ``Ledger.fenced`` every transition checks the block's fence, and after the
        block none does."""
        ledger = deps.ledger
        bid = batch_with(ledger, SID, {"metadata": {"v": "1"}})
        stale = Fence(SessionLocks(redis_client).keys.lock(None, SID), "token")

        with ledger.fenced(stale), pytest.raises(LockLostError):
            ledger.transition(bid, 1, Outcome.RUNNING)
        moved = ledger.transition(bid, 1, Outcome.RUNNING)

        assert True is moved


class TestConfirm:
    def test_holder_confirms_and_refreshes_the_lock(self, redis_client: redis.Redis) -> None:
        """The holder's confirm passes and resets the lock's time to live."""
        locks = SessionLocks(redis_client, ttl=60.0)
        token = locks.acquire(None, SID)
        assert token is not None
        redis_client.pexpire(locks.keys.lock(None, SID), 100)

        locks.confirm(None, SID, token)

        assert redis_client.pttl(locks.keys.lock(None, SID)) > 10_000

    def test_taken_over_lock_is_not_confirmed(self, redis_client: redis.Redis) -> None:
        """A holder whose lock was taken over learns it with LockLostError."""
        locks = SessionLocks(redis_client)
        token = locks.acquire(None, SID)
        assert token is not None
        redis_client.set(locks.keys.lock(None, SID), "someone-else")

        with pytest.raises(LockLostError):
            locks.confirm(None, SID, token)


class TestStaleWorker:
    def test_resumed_worker_does_not_overwrite_a_newer_update(
        self, deps: Deps, emulator: Any, stale: StaleWorker
    ) -> None:
        """A worker frozen before sending an old update, which the fleet then resolved (its
        batch canceled, the running row sent under its key), does not send it over the newer
        update the fleet applied after it."""
        # Given an old and a new update of one session, and a worker frozen about to send the old
        (sid,) = emulator.seed(count=1)
        old = batch_with(deps.ledger, sid, {"metadata": {"v": "old"}})
        new = batch_with(deps.ledger, sid, {"metadata": {"v": "new"}})
        stale.start(old)

        # When it is taken for dead, its batch is canceled, the fleet applies the new update
        stale.declared_dead()
        deps.ledger.cancel(old)
        fleet = (process_row(deps, old, 1), process_row(deps, new, 1))
        # ... and then it resumes
        resumed = stale.resume()

        # Then it gives its row back unsent, and the session keeps the newer update
        assert (Outcome.SUCCEEDED, Outcome.SUCCEEDED) == fleet
        assert {"v": "new"} == deps.stripe().retrieve(sid).metadata
        assert {sid: 2} == emulator.stats()["applied"]
        assert Later(BUSY_DELAY) == resumed
        assert Outcome.SUCCEEDED == deps.ledger.get_row(old, 1).outcome

    def test_resumed_worker_sends_nothing_for_a_row_the_fleet_finished(
        self, deps: Deps, emulator: Any, stale: StaleWorker
    ) -> None:
        """A worker frozen before sending a row that the fleet then finished neither sends it
        again nor touches its record."""
        # Given a worker frozen about to send a row
        (sid,) = emulator.seed(count=1)
        bid = batch_with(deps.ledger, sid, {"metadata": {"v": "1"}})
        stale.start(bid)

        # When it is taken for dead and the fleet finishes the row, then it resumes
        stale.declared_dead()
        fleet = process_row(deps, bid, 1)
        record = deps.ledger.get_row(bid, 1)
        requests = emulator.stats()["requests"]
        resumed = stale.resume()

        # Then it sent nothing more and the fleet's record stands
        assert requests == emulator.stats()["requests"]
        assert record == deps.ledger.get_row(bid, 1)
        assert (Outcome.SUCCEEDED, Later(BUSY_DELAY)) == (fleet, resumed)


class TestRowFinishedWhileWaiting:
    def test_row_skipped_while_a_worker_waited_for_its_lock_is_not_sent(
        self, deps: Deps, emulator: Any
    ) -> None:
        """A worker that read a row, then waited for its session's lock while the fleet ended
        the row, does not send it once it gets the lock."""
        # Given a worker waiting for a session lock that the fleet holds
        (sid,) = emulator.seed(count=1)
        bid = batch_with(deps.ledger, sid, {"metadata": {"v": "1"}})
        held = deps.locks.acquire(None, sid)
        assert held is not None
        waiting = threading.Event()

        def sleep(seconds: float) -> None:
            waiting.set()
            time.sleep(seconds)

        worker = bootstrap(deps.settings)
        worker.locks = SessionLocks(worker.redis, sleep=sleep)
        result: list[Outcome | Later] = []
        thread = threading.Thread(
            target=lambda: result.append(
                process_row(worker, bid, 1, options=RowOptions(lock_wait=20))
            )
        )
        thread.start()
        try:
            assert waiting.wait(timeout=10)
            # When the batch is canceled, the fleet skips the row and lets the lock go
            deps.ledger.cancel(bid)
            fleet = process_row(deps, bid, 1)
            deps.locks.release(None, sid, held)
            thread.join(timeout=30)
        finally:
            worker.close()

        # Then the waiting worker sent nothing and the row stays skipped
        assert {} == emulator.stats()["applied"]
        assert ([Outcome.SKIPPED], Outcome.SKIPPED) == (result, fleet)
        assert Outcome.SKIPPED == deps.ledger.get_row(bid, 1).outcome
