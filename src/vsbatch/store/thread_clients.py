"""A Redis client of the calling thread's own, for a row's two script calls.

A shared client checks a connection out of the pool for each command: a lock, the pool's
bookkeeping and a poll of the socket to see that no stale reply waits in it, about a twentieth
of a worker's CPU per row. A worker thread that claims and ends rows all day keeps one
connection of the same pool instead (redis-py's ``single_connection_client``): the same
server, options, retries and Sentinel failover, without the checkout. At most ``limit``
threads get one, so the pool keeps connections for everything else; threads past it use the
shared client.
"""

from __future__ import annotations

import threading

import redis

__all__ = ["ThreadClients"]


class ThreadClients:
    """Hands each thread a client holding one connection of ``client``'s pool."""

    def __init__(self, client: redis.Redis, limit: int) -> None:
        self._shared = client
        self._left = limit
        self._lock = threading.Lock()
        self._local = threading.local()

    def get(self) -> redis.Redis:
        """The calling thread's own client (the shared one once ``limit`` are handed out)."""
        mine: redis.Redis | None = getattr(self._local, "client", None)
        if mine is None:
            mine = self._local.client = self._new()
        return mine

    def _new(self) -> redis.Redis:
        with self._lock:
            if self._left <= 0:
                return self._shared
            self._left -= 1
        return redis.Redis(
            connection_pool=self._shared.connection_pool, single_connection_client=True
        )
