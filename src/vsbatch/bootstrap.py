"""The composition root: builds every long-lived dependency from one ``Settings``.

Nothing else constructs Redis clients, the ledger, the limiter, the locks or Stripe clients.
Stripe clients are per thread (httpx clients are cheap to share but costly to build, and the
Celery threads pool runs one task per thread), everything else is shared and thread-safe.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError

from vsbatch.config import Settings
from vsbatch.errors import ConfigError
from vsbatch.store.ledger import Ledger
from vsbatch.store.locks import SessionLocks
from vsbatch.store.rate_limit import RedisRateLimiter
from vsbatch.store.redis_url import is_sentinel_url
from vsbatch.store.refusals import is_refusal as is_refusal
from vsbatch.store.refusals import redis_refusal as redis_refusal
from vsbatch.store.refusals import tls_hint
from vsbatch.urls import safe_url

if TYPE_CHECKING:  # imported where used: reading the ledger (``status``) needs no httpx
    from vsbatch.store.row_lease import RowLeases
    from vsbatch.stripe.client import StripeClient
    from vsbatch.stripe.retry import RetryPolicy


@dataclass
class Deps:
    """Everything the domain functions need, built once per process."""

    settings: Settings
    redis: redis.Redis
    ledger: Ledger
    limiter: RedisRateLimiter
    locks: SessionLocks
    policy: RetryPolicy
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @functools.cached_property
    def leases(self) -> RowLeases:
        """Claiming and ending rows: the ledger's and the locks' two row scripts."""
        from vsbatch.store.row_lease import RowLeases

        # Half the pool at most is held by worker threads, a connection each (thread_clients).
        return RowLeases(self.ledger, self.locks, self.limiter, thread_clients=POOL_SIZE // 2)

    def stripe(self) -> StripeClient:
        """This thread's Stripe client (built on first use, then reused)."""
        client: StripeClient | None = getattr(self._local, "stripe", None)
        if client is None:
            from vsbatch.stripe.client import StripeClient

            client = StripeClient.from_settings(self.settings)
            self._local.stripe = client
        return client

    def close(self) -> None:
        """Close this thread's Stripe client and the Redis pool."""
        client: StripeClient | None = getattr(self._local, "stripe", None)
        if client is not None:
            client.close()
            self._local.stripe = None
        self.redis.close()


# Connections one process opens to Redis at most. redis-py's default pool (100) fails a
# command at once when all are in use, and a worker runs up to 256 threads: a busy moment
# failed whole chunks ("Too many connections"). This pool makes a thread wait for a free
# connection instead (for at most POOL_WAIT seconds), and a command holds one for well under
# a millisecond.
POOL_SIZE = 512
POOL_WAIT = 30.0


def _retries(patient: bool) -> dict[str, Any]:
    """Reconnect retries: about half a minute (a worker rides out a Redis restart), or under a
    second (the dashboard answers 503 at once rather than hang a page)."""
    if patient:
        return {
            "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=30),
            "socket_connect_timeout": 5,
        }
    return {
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.1), retries=2),
        "socket_connect_timeout": 2,
    }


def redis_client(
    url: str, *, sentinel: SentinelOptions | None = None, patient: bool = True
) -> redis.Redis:
    """A Redis client that rides out a short server restart (bounded reconnect retries) and
    that many threads share (a blocking pool of ``POOL_SIZE`` connections).

    ``patient=False`` gives up after two quick retries (:func:`_retries`): for a process that
    serves people (``vsbatch web``), not one that works a batch.

    A ``sentinel://`` URL gives a client on the master the sentinels name ``sentinel.master``
    (``store.sentinel``), which follows a failover.
    """
    options: dict[str, Any] = {
        "max_connections": POOL_SIZE,
        "timeout": POOL_WAIT,
        **_retries(patient),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 30,
        "socket_timeout": 30,
    }
    try:
        if is_sentinel_url(url):
            return _sentinel_client(url, sentinel, options)
        pool = redis.BlockingConnectionPool.from_url(url, **options)
    except ValueError as exc:
        raise ConfigError(f"invalid VSBATCH_REDIS_URL: {exc}") from None
    return redis.Redis(connection_pool=pool)


@dataclass(frozen=True)
class SentinelOptions:
    """The Sentinel settings that are not in a ``sentinel://`` URL."""

    master: str
    password: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SentinelOptions | None:
        """The settings' Sentinel options, or None when no master name is set."""
        if not settings.redis_sentinel_master:
            return None
        secret = settings.redis_sentinel_password
        return cls(settings.redis_sentinel_master, secret.get_secret_value() if secret else None)


def _sentinel_client(
    url: str, sentinel: SentinelOptions | None, options: dict[str, Any]
) -> redis.Redis:
    if sentinel is None:
        raise ConfigError(
            "VSBATCH_REDIS_URL is a sentinel:// URL: set VSBATCH_REDIS_SENTINEL_MASTER to the"
            " name the sentinels monitor the master under"
        )
    from vsbatch.store.sentinel import sentinel_client

    return sentinel_client(
        url, master=sentinel.master, sentinel_password=sentinel.password, **options
    )


def check_redis(client: redis.Redis, url: str, *, sentinel: SentinelOptions | None = None) -> None:
    """Fail fast with a one-line ConfigError when Redis cannot be reached.

    The probe is a separate connection with two quick retries: ``client`` itself retries for
    about half a minute, which suits a server restart mid-batch, not a wrong address.
    """
    quick = {
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.1), retries=2),
        "socket_connect_timeout": 5,
        "socket_timeout": 5,
    }
    if is_sentinel_url(url):
        probe = _sentinel_client(url, sentinel, quick)
    else:
        probe = redis.Redis.from_url(url, **quick)
    try:
        probe.ping()
    except redis.AuthenticationError:
        raise ConfigError(
            f"Redis refused the credentials in VSBATCH_REDIS_URL ({safe_url(url)})"
        ) from None
    except redis.ResponseError as exc:  # it answers, but refuses (MISCONF, OOM, ...)
        raise redis_refusal(exc) from None
    except redis.RedisError as exc:
        raise ConfigError(f"cannot reach Redis at {safe_url(url)}: {_cause(exc)}") from None
    finally:
        probe.close()


def _cause(exc: redis.RedisError) -> str:
    """The error's type; for a TLS refusal the reason and the fix, for Sentinel's "no
    master" its (password-free) message."""
    text = str(exc).partition("\n")[0]
    tls = tls_hint(text)
    if tls is not None:
        return f"{type(exc).__name__} ({tls})"
    if isinstance(exc, MasterNotFoundError):
        return f"{type(exc).__name__} ({safe_url(text)[:200]})"
    return type(exc).__name__


def bootstrap(settings: Settings, *, check: bool = True, patient: bool = True) -> Deps:
    """Build the process's dependencies from settings (Redis must already be configured);
    ``patient`` as :func:`redis_client` has it."""
    from vsbatch.stripe.retry import RetryPolicy

    client = connect(settings, check=check, patient=patient)
    rate = settings.effective_rate_limit
    return Deps(
        settings=settings,
        redis=client,
        ledger=ledger_on(client, settings),
        limiter=RedisRateLimiter(client, rate=rate, prefix=settings.key_prefix),
        locks=SessionLocks(client, ttl=settings.session_lock_ttl, prefix=settings.key_prefix),
        policy=RetryPolicy.from_settings(settings),
    )


def connect(settings: Settings, *, check: bool = True, patient: bool = True) -> redis.Redis:
    """The settings' Redis client, checked reachable (:func:`check_redis`) unless told not to;
    ``patient`` as :func:`redis_client` has it."""
    if not settings.redis_url:
        raise ConfigError("no Redis configured: set VSBATCH_REDIS_URL")
    sentinel = SentinelOptions.from_settings(settings)
    client = redis_client(settings.redis_url, sentinel=sentinel, patient=patient)
    if check:
        check_redis(client, settings.redis_url, sentinel=sentinel)
    return client


def ledger_on(client: redis.Redis, settings: Settings) -> Ledger:
    """The ledger on ``client`` with the settings' retention (for Deps and read-only commands)."""
    retention = settings.ledger_retention_days * 86400
    return Ledger(client, retention_seconds=retention, prefix=settings.key_prefix)
