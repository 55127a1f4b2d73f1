"""Redis Sentinel for the ledger: ``sentinel://`` URLs as Celery and kombu take them.

A Sentinel URL (parsed by ``redis_url.parse_sentinel_url``) names the sentinels, not Redis: ``sentinel://[:PASSWORD@]host:port[/db]``,
several joined by ``;`` (``sentinel://:pw@s1:26379/0;sentinel://:pw@s2:26379/0``), exactly as
kombu's Sentinel transport reads ``broker_url``. The master's name is not in the URL (kombu
takes it from the transport options): it is ``VSBATCH_REDIS_SENTINEL_MASTER``. The password in
the URL is the master's (kombu's reading); sentinels that require a password of their own get
``VSBATCH_REDIS_SENTINEL_PASSWORD``. The database and credentials come from the first URL,
as in kombu.

:func:`sentinel_client` builds the ledger's redis-py client on the same sentinels: it asks
them for the master before each new connection and reconnects to the new master after a
failover (redis-py's ``SentinelConnectionPool``), with the blocking pool the plain client
has (``bootstrap.POOL_SIZE``).
"""

from __future__ import annotations

from typing import Any

import redis
from redis.connection import BlockingConnectionPool
from redis.sentinel import Sentinel, SentinelConnectionPool

from vsbatch.store.redis_url import parse_sentinel_url

__all__ = ["BlockingSentinelPool", "sentinel_client"]


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """redis-py's Sentinel pool with the blocking pool's waiting: a thread waits for a free
    connection (up to ``timeout``) rather than failing at ``max_connections``."""


def sentinel_client(
    url: str,
    *,
    master: str,
    sentinel_password: str | None = None,
    **connection: Any,
) -> redis.Redis:
    """A redis-py client on the master that the URL's sentinels name ``master``.

    ``connection`` holds the pool and connection options of the plain client
    (``max_connections``, ``timeout``, ``retry``, ``socket_timeout``...); they apply to the
    master's connections. The sentinels get the socket timeouts and ``sentinel_password``.
    """
    target = parse_sentinel_url(url)
    sockets = {k: v for k, v in connection.items() if k.startswith("socket_")}
    sentinel_kwargs: dict[str, Any] = dict(sockets)
    if sentinel_password:
        sentinel_kwargs["password"] = sentinel_password
    credentials: dict[str, Any] = {"db": target.db}
    if target.username:
        credentials["username"] = target.username
    if target.password:
        credentials["password"] = target.password
    manager = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    client: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call]
        master,
        redis_class=redis.Redis,
        connection_pool_class=BlockingSentinelPool,
        **credentials,
        **connection,
    )
    return client
