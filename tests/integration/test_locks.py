"""Per-session locks against a real Redis: exclusion, ownership, expiry, context manager."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.fakes import FakeTime
from vsbatch.errors import SessionBusyError
from vsbatch.store.locks import SessionLocks


@pytest.fixture
def locks(redis_client: redis.Redis) -> SessionLocks:
    return SessionLocks(redis_client, ttl=5.0)


class TestSessionLocks:
    def test_acquire_returns_token(self, locks: SessionLocks) -> None:
        """A free lock is taken and a token returned."""
        assert isinstance(locks.acquire("acct_1", "vs_1"), str)

    def test_held_lock_not_acquired(self, locks: SessionLocks) -> None:
        """A held lock is not acquired a second time."""
        locks.acquire("acct_1", "vs_1")

        assert locks.acquire("acct_1", "vs_1") is None

    def test_other_session_or_account_is_free(self, locks: SessionLocks) -> None:
        """Locks are per (account, session)."""
        locks.acquire("acct_1", "vs_1")

        assert (True, True) == (
            locks.acquire("acct_1", "vs_2") is not None,
            locks.acquire("acct_2", "vs_1") is not None,
        )

    def test_release_frees_lock(self, locks: SessionLocks) -> None:
        """After release by its holder the lock can be taken again."""
        token = locks.acquire(None, "vs_1")
        assert token is not None

        released = locks.release(None, "vs_1", token)

        assert (True, True) == (released, locks.acquire(None, "vs_1") is not None)

    def test_release_by_non_holder_refused(self, locks: SessionLocks) -> None:
        """A wrong token neither releases nor disturbs the lock."""
        locks.acquire(None, "vs_1")

        released = locks.release(None, "vs_1", "not-the-token")

        assert (False, None) == (released, locks.acquire(None, "vs_1"))

    def test_lock_of_dead_holder_expires(self, redis_client: redis.Redis) -> None:
        """A lock nobody releases expires after its ttl."""
        short = SessionLocks(redis_client, ttl=0.05)
        short.acquire(None, "vs_1")

        time.sleep(0.1)

        assert short.acquire(None, "vs_1") is not None

    def test_lock_of_a_worker_that_stopped_beating_is_taken_over(
        self, redis_client: redis.Redis
    ) -> None:
        """A lock whose token names a worker is free once that worker's heartbeat is gone,
        long before its TTL; while the worker beats, it is not."""
        # Given a lock held (TTL 5 min) by worker w1, which beats
        worker = SessionLocks(redis_client, ttl=300.0)
        worker.owner = "host:1:abc"
        heartbeat = worker.keys.alive("host:1:abc")
        redis_client.set(heartbeat, "1")
        held = worker.acquire(None, "vs_1")
        other = SessionLocks(redis_client, ttl=300.0)

        # When another worker tries while w1 beats, and again after its heartbeat expired
        while_alive = other.acquire(None, "vs_1")
        redis_client.delete(heartbeat)
        after_death = other.acquire(None, "vs_1")

        # Then only the second try takes the lock, and w1 can no longer release it
        assert held is not None and held.startswith("host:1:abc|")
        assert (None, True) == (while_alive, after_death is not None)
        assert False is worker.release(None, "vs_1", held)

    def test_a_token_naming_no_worker_is_never_taken_over(
        self, locks: SessionLocks, redis_client: redis.Redis
    ) -> None:
        """Locks of processes that do not beat (no owner) wait for their TTL."""
        token = locks.acquire(None, "vs_1")

        assert token is not None and "|" not in token
        assert locks.acquire(None, "vs_1") is None

    def test_expired_holder_cannot_release_new_holder(self, redis_client: redis.Redis) -> None:
        """A holder whose lock expired cannot release the next holder's lock."""
        short = SessionLocks(redis_client, ttl=0.05)
        old = short.acquire(None, "vs_1")
        assert old is not None
        time.sleep(0.1)
        short.acquire(None, "vs_1")

        assert False is short.release(None, "vs_1", old)

    def test_extend_by_holder(self, locks: SessionLocks, redis_client: redis.Redis) -> None:
        """The holder can extend the lock's time to live."""
        token = locks.acquire(None, "vs_1")
        assert token is not None

        extended = locks.extend(None, "vs_1", token, ttl=60)

        assert (True, True) == (extended, redis_client.pttl(locks.keys.lock(None, "vs_1")) > 5000)

    def test_extend_without_token_uses_own(
        self, locks: SessionLocks, redis_client: redis.Redis
    ) -> None:
        """Inside hold, extend without a token extends the lock this instance holds."""
        with locks.hold(None, "vs_1"):
            extended = locks.extend(None, "vs_1", ttl=60)
            pttl = redis_client.pttl(locks.keys.lock(None, "vs_1"))

        assert (True, True) == (extended, pttl > 5000)

    def test_extend_without_token_by_other_instance_refused(
        self, locks: SessionLocks, redis_client: redis.Redis
    ) -> None:
        """Another instance (another worker) cannot extend a lock it does not hold."""
        locks.acquire(None, "vs_1")

        assert False is SessionLocks(redis_client).extend(None, "vs_1")

    def test_extend_by_non_holder_refused(self, locks: SessionLocks) -> None:
        """A wrong token cannot extend the lock."""
        locks.acquire(None, "vs_1")

        assert False is locks.extend(None, "vs_1", "not-the-token")

    def test_acquire_waits_with_backoff_then_gives_up(self, redis_client: redis.Redis) -> None:
        """A waiting acquire retries with growing sleeps and gives up after ``wait``."""
        fake = FakeTime()
        locks = SessionLocks(redis_client, sleep=fake.sleep, clock=fake.clock)
        locks.acquire(None, "vs_1")

        token = locks.acquire(None, "vs_1", wait=1.0)

        assert (None, True, True) == (
            token,
            pytest.approx(1.0) == sum(fake.sleeps),
            max(fake.sleeps) <= 0.2,
        )

    def test_acquire_waits_for_release(self, locks: SessionLocks) -> None:
        """A waiting acquire gets the lock once its holder releases it."""
        token = locks.acquire(None, "vs_1")
        assert token is not None
        timer = threading.Timer(0.1, locks.release, args=(None, "vs_1", token))
        timer.start()

        got = locks.acquire(None, "vs_1", wait=2.0)
        timer.join()

        assert got is not None

    def test_threads_exclude_each_other(self, redis_url: str) -> None:
        """Threads holding one session's lock never overlap."""
        inside = 0
        most = 0
        entries = 0
        guard = threading.Lock()

        def worker() -> None:
            nonlocal inside, most, entries
            locks = SessionLocks(redis.Redis.from_url(redis_url), ttl=5.0)
            for _ in range(5):
                with locks.hold("acct_1", "vs_1", wait=10.0):
                    with guard:
                        inside += 1
                        entries += 1
                        most = max(most, inside)
                    time.sleep(0.002)
                    with guard:
                        inside -= 1

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert (1, 40) == (most, entries)

    def test_hold_raises_when_busy(self, locks: SessionLocks) -> None:
        """hold raises SessionBusyError when the lock stays held."""
        locks.acquire("acct_1", "vs_1")

        with pytest.raises(SessionBusyError), locks.hold("acct_1", "vs_1"):
            pass

    def test_hold_releases_on_exception(self, locks: SessionLocks) -> None:
        """hold releases the lock when its block raises."""
        with pytest.raises(RuntimeError), locks.hold("acct_1", "vs_1"):
            raise RuntimeError("boom")

        assert locks.acquire("acct_1", "vs_1") is not None
