"""Per-session mutual exclusion across the fleet (Redis locks with a token and a TTL).

Two updates of one session must never run at once (Stripe answers 429 ``lock_timeout``),
so a worker holds ``<prefix>:lock:<account>:<session_id>`` while it reads, sends and
records. The lock is a key holding a random token, set if absent with a TTL; only the
token's holder may release or extend it (``lua/lock.lua``). A lock whose holder died expires
after ``ttl``, or is taken over as soon as that worker's heartbeat is gone (``owner``).

The token is also a fence. A worker paused (SIGSTOP, a frozen VM) past its heartbeat may wake
up in the middle of a row whose lock the fleet took over. So it confirms, in Redis, that its
token still holds the lock right before each send (:meth:`SessionLocks.confirm`), and every
ledger write it makes for the row checks the token in the same script (:meth:`fence`, see
``Ledger.fenced``). A random token is enough: the checks happen in Redis, which holds the
current token; Stripe, which could not check any token, is covered by the idempotency key.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vsbatch.errors import LockLostError, SessionBusyError
from vsbatch.store.keys import Keys
from vsbatch.store.scripts import lua_script

if TYPE_CHECKING:
    import redis

__all__ = ["SessionLocks"]

_FIRST_BACKOFF = 0.01  # seconds; doubles up to _MAX_BACKOFF while waiting for a lock
_MAX_BACKOFF = 0.2


@dataclass(frozen=True)
class Fence:
    """Proof that a worker holds a session's lock: the lock's key and the holder's token."""

    key: str
    token: str
    ttl_ms: int = 0  # the lock's time to live, for checks that also extend it


class SessionLocks:
    """Locks on single sessions, shared by every worker through Redis.

    Args:
        client: A redis-py client.
        prefix: Namespace of the keys.
        ttl: Seconds a lock lives unless extended; longer than one send with its retries.
        sleep: How to sleep between attempts (injected for tests).
        clock: Monotonic seconds, for the wait deadline.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "vsbatch",
        ttl: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._r = client
        self.keys = Keys(prefix)
        self.ttl = ttl
        self._sleep = sleep
        self._clock = clock
        self._script = client.register_script(lua_script("lock.lua"))
        # The beating worker process these locks belong to (see ``liveness``), set while its
        # heartbeat runs: its tokens name it, so they are taken over once it stops beating.
        self.owner: str | None = None
        # Tokens this instance acquired and has not released, by key, so that ``extend``
        # can be called without the token. Threads of one process never hold one key at once.
        self._held: dict[str, str] = {}

    def new_token(self) -> str:
        """A fresh random token, naming this process when it beats (see ``owner``)."""
        token = secrets.token_hex(16)
        return token if self.owner is None else f"{self.owner}|{token}"

    def acquire(self, account: str | None, session_id: str, *, wait: float = 0.0) -> str | None:
        """Take the session's lock, waiting up to ``wait`` seconds for it.

        Returns:
            The token that proves ownership, or None if the lock stayed held.
        """
        key = self.keys.lock(account, session_id)
        token = self.new_token()
        args: list[str | int] = [
            "acquire",
            token,
            max(1, int(self.ttl * 1000)),
            self.keys.alive(""),
        ]
        for _ in self.waits(wait):
            if self._script(keys=[key], args=args):
                self._held[key] = token
                return token
        return None

    def waits(self, wait: float) -> Iterator[None]:
        """Yield at once, then again after each pause while ``wait`` seconds last: the
        rhythm of waiting for a held lock (jittered exponential backoff, so waiters on one
        session do not retry in step)."""
        deadline = self._clock() + wait
        backoff = _FIRST_BACKOFF
        while True:
            yield
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            self._sleep(min(remaining, backoff * random.uniform(0.5, 1.0)))
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def release(self, account: str | None, session_id: str, token: str) -> bool:
        """Release the lock if ``token`` still holds it.

        Returns:
            True if it was released; False if it had expired or belongs to someone else.
        """
        key = self.keys.lock(account, session_id)
        if self._held.get(key) == token:
            del self._held[key]
        return bool(self._script(keys=[key], args=["release", token]))

    def extend(
        self,
        account: str | None,
        session_id: str,
        token: str | None = None,
        ttl: float | None = None,
    ) -> bool:
        """Reset the lock's time to live to ``ttl`` (default: the configured ttl) seconds.

        Args:
            account: The session's Stripe account.
            session_id: The session.
            token: The holder's token; by default the one this instance acquired.
            ttl: New time to live in seconds; by default the configured ``ttl``.

        Returns:
            True if the token still held the lock; False if it was lost (or never held).
        """
        ms = max(1, int((self.ttl if ttl is None else ttl) * 1000))
        key = self.keys.lock(account, session_id)
        token = token if token is not None else self._held.get(key)
        if token is None:
            return False
        return bool(self._script(keys=[key], args=["extend", token, ms]))

    def confirm(self, account: str | None, session_id: str, token: str) -> None:
        """Check that ``token`` still holds the lock, and reset its time to live.

        Called right before each send: a worker that lost the lock while it was paused must
        not send.

        Raises:
            LockLostError: The lock expired or was taken over.
        """
        if not self.extend(account, session_id, token):
            raise LockLostError(f"lost the lock of session {session_id}: expired or taken over")

    def fence(self, account: str | None, session_id: str, token: str) -> Fence:
        """The fence of the lock ``token`` holds, for the ledger's fenced writes."""
        return Fence(self.keys.lock(account, session_id), token, max(1, int(self.ttl * 1000)))

    @contextmanager
    def hold(self, account: str | None, session_id: str, *, wait: float = 0.0) -> Iterator[str]:
        """Hold the session's lock for the ``with`` block; released in ``finally``.

        Yields:
            The lock's token (for :meth:`extend`).

        Raises:
            SessionBusyError: The lock stayed held by another worker for ``wait`` seconds.
        """
        token = self.acquire(account, session_id, wait=wait)
        if token is None:
            raise SessionBusyError(f"session {session_id} is being updated by another worker")
        try:
            yield token
        finally:
            self.release(account, session_id, token)
