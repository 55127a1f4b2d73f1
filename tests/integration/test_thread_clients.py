"""Each worker thread's own Redis connection for a row's two scripts, against a real Redis."""

from __future__ import annotations

import threading

import redis

from vsbatch.bootstrap import redis_client as make_client
from vsbatch.store.thread_clients import ThreadClients


def client_id(client: redis.Redis) -> int:
    return int(client.client_id())


class TestThreadClients:
    def test_each_thread_keeps_one_connection_of_its_own(self, redis_url: str) -> None:
        """A thread's commands all go over one connection, and another thread's over another."""
        clients = ThreadClients(make_client(redis_url), limit=8)
        seen: dict[str, list[int]] = {}

        def work(name: str) -> None:
            seen[name] = [client_id(clients.get()) for _ in range(3)]

        threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert (1, 1, True) == (
            len(set(seen["a"])),
            len(set(seen["b"])),
            seen["a"][0] != seen["b"][0],
        )

    def test_threads_past_the_limit_share_the_pooled_client(self, redis_url: str) -> None:
        """Past ``limit`` threads, a thread gets the shared client: the pool keeps the rest."""
        shared = make_client(redis_url)
        clients = ThreadClients(shared, limit=1)
        got: list[redis.Redis] = []
        for _ in range(2):
            t = threading.Thread(target=lambda: got.append(clients.get()))
            t.start()
            t.join()

        assert (False, True) == (got[0] is shared, got[1] is shared)

    def test_a_dropped_connection_is_made_again(
        self, redis_url: str, redis_client: redis.Redis
    ) -> None:
        """A connection the server drops (a restart, a kill) is reconnected by the client's
        retries: the thread's next command succeeds."""
        clients = ThreadClients(make_client(redis_url), limit=8)
        mine = clients.get()
        first = client_id(mine)
        redis_client.client_kill_filter(_id=str(first))

        assert (True, True) == (mine.ping(), client_id(mine) != first)
