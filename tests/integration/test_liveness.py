"""Worker liveness on a real Redis: heartbeats, held chunks, and reaping dead workers' chunks."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from tests.fakes import FakeTime
from vsbatch.store.keys import Keys
from vsbatch.store.liveness import MISSED_BEATS, Heartbeat, HeldChunk, Liveness

CHUNK = HeldChunk("b_1", [2, 3, 4], {"read_first": True})


@pytest.fixture
def keys() -> Keys:
    return Keys("vsbatch")


def node(redis_client: redis.Redis, keys: Keys, name: str, interval: float = 5.0) -> Liveness:
    return Liveness(redis_client, keys, name, interval=interval)


class TestHeldChunks:
    def test_chunk_round_trips_through_json(self) -> None:
        """What a worker records is what a reaper sends again."""
        assert CHUNK == HeldChunk.from_json(CHUNK.to_json())

    def test_a_live_nodes_chunks_stay_with_it(self, redis_client: redis.Redis, keys: Keys) -> None:
        """A node that beats keeps its chunks; nobody takes them."""
        worker = node(redis_client, keys, "w1")
        worker.beat()
        worker.hold("m1", CHUNK)

        assert [] == node(redis_client, keys, "w2").reap()
        assert 1 == redis_client.hlen(keys.held("w1"))

    def test_a_dead_nodes_chunks_go_to_exactly_one_reaper(
        self, redis_client: redis.Redis, keys: Keys
    ) -> None:
        """Once the heartbeat is gone, one of several concurrent reapers takes every chunk."""
        # Given a worker that held two chunks, released one, and stopped beating
        dead = node(redis_client, keys, "dead")
        dead.beat()
        dead.hold("m1", CHUNK)
        dead.hold("m2", HeldChunk("b_1", [5]))
        dead.release("m2")
        dead.hold("m3", HeldChunk("b_2", [9], {}))
        redis_client.delete(keys.alive("dead"))

        # When eight workers reap at once
        taken: list[list[HeldChunk]] = []
        reapers = [node(redis_client, keys, f"r{i}") for i in range(8)]
        threads = [threading.Thread(target=lambda r=r: taken.append(r.reap())) for r in reapers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # Then exactly one got the two chunks still held, and the dead node is forgotten
        got = sorted((c for chunks in taken for c in chunks), key=lambda c: c.batch_id)
        assert [CHUNK, HeldChunk("b_2", [9], {})] == got
        assert 1 == sum(1 for chunks in taken if chunks)
        assert (0, False) == (
            redis_client.exists(keys.held("dead")),
            redis_client.sismember(keys.nodes, "dead"),
        )

    def test_leave_forgets_the_node(self, redis_client: redis.Redis, keys: Keys) -> None:
        """A clean stop leaves nothing for a reaper (its messages went back to the broker)."""
        worker = node(redis_client, keys, "w1")
        worker.beat()
        worker.hold("m1", CHUNK)

        worker.leave()

        assert [] == node(redis_client, keys, "w2").reap()
        assert [] == redis_client.keys("vsbatch:*")

    def test_heartbeat_expires_after_the_missed_beats(
        self, redis_client: redis.Redis, keys: Keys
    ) -> None:
        """The heartbeat key lives MISSED_BEATS intervals: that is how long death takes to see."""
        node(redis_client, keys, "w1", interval=2.0).beat()

        ttl_ms = redis_client.pttl(keys.alive("w1"))

        assert 2.0 * MISSED_BEATS * 1000 - 1000 < ttl_ms <= 2.0 * MISSED_BEATS * 1000
        assert 0 < redis_client.ttl(keys.nodes)  # no key vsbatch writes lives forever


class TestHeartbeat:
    def test_run_once_beats_and_sends_dead_nodes_chunks_again(
        self, redis_client: redis.Redis, keys: Keys
    ) -> None:
        """One round: this node is alive afterwards, and each dead node's chunk is enqueued."""
        dead = node(redis_client, keys, "dead")
        dead.hold("m1", CHUNK)  # it never beat, or its beat expired
        sent: list[HeldChunk] = []
        beat = Heartbeat(node(redis_client, keys, "me"), sent.append)

        count = beat.run_once()

        assert (1, [CHUNK]) == (count, sent)
        assert redis_client.exists(keys.alive("me"))
        assert 0 == beat.run_once()

    def test_sweeps_at_most_once_per_sweep_interval(
        self, redis_client: redis.Redis, keys: Keys
    ) -> None:
        """Rounds run every beat; the sweep only once ``sweep_every`` seconds have passed."""
        fake = FakeTime()
        sweeps: list[float] = []
        beat = Heartbeat(
            node(redis_client, keys, "me"),
            lambda _chunk: None,
            lambda: sweeps.append(fake.now),
            sweep_every=150.0,
            clock=fake.clock,
        )

        for _ in range(8):  # 8 rounds, 50 s apart
            fake.sleep(50.0)
            beat.run_once()

        assert [150.0, 300.0] == sweeps

    def test_a_failing_round_does_not_stop_the_thread(
        self, redis_client: redis.Redis, keys: Keys
    ) -> None:
        """An enqueue that raises (broker away) is logged; the next round runs again."""
        node(redis_client, keys, "dead").hold("m1", CHUNK)
        rounds = threading.Semaphore(0)
        calls: list[Any] = []

        def enqueue(chunk: HeldChunk) -> None:
            calls.append(chunk)
            rounds.release()
            if len(calls) == 1:
                node(redis_client, keys, "dead").hold("m2", CHUNK)  # more work for round 2
                raise ConnectionError("broker away")

        beat = Heartbeat(node(redis_client, keys, "me", interval=0.05), enqueue).start()
        try:
            assert rounds.acquire(timeout=5) and rounds.acquire(timeout=5)
        finally:
            beat.stop()
        assert [CHUNK, CHUNK] == calls[:2]


class TestHoldCost:
    def test_holding_a_chunk_is_one_command(self, redis_client: redis.Redis, keys: Keys) -> None:
        """Every chunk message is held once: its record, TTL and node go in one script call
        (the broker's bookkeeping already costs a chunk several commands)."""
        worker = node(redis_client, keys, "w1")
        worker.hold("m0", CHUNK)  # loads the script
        redis_client.config_resetstat()

        worker.hold("m1", CHUNK)

        calls = {k: v["calls"] for k, v in redis_client.info("commandstats").items()}
        assert (1, 2, True, True) == (
            calls.get("cmdstat_evalsha"),
            redis_client.hlen(keys.held("w1")),
            redis_client.ttl(keys.held("w1")) > 0,
            bool(redis_client.sismember(keys.nodes, "w1")),
        )
