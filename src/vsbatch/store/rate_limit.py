"""The rate limiter: one request rate per Stripe account, shared by the whole fleet.

Stripe limits requests per account (test 25/s, live 100/s), not per worker, so every worker
process on every machine reserves its send slots from one GCRA schedule in Redis
(``lua/gcra.lua``, server time). Each call takes the next slot and learns how long to sleep
before sending, so N workers together send smoothly at the rate, with no polling.

A 429 ``rate_limit`` from Stripe adapts the account's rate for the fleet by AIMD, as TCP does
(RFC 5681): a multiplicative decrease, then an additive increase back to the configured rate.
Stripe counts requests in a sliding one-second window, so a lone 429 near the limit is a short
burst, not a wrong rate: it keeps ``backoff`` (85 %) of the rate, and the rate climbs back by
``probe`` (25 %) of the rate that drew the 429 per second, in under a second. As in TCP, a
429 for a request reserved before the last cut was in flight at the old rate: that cut already
answered it. A 429 for a request reserved after it says the cut was not enough: within
``penalty_window`` each keeps another ``backoff``, down to half (a real overload halves). A
first 429 while still climbing means the configured rate is above Stripe's real one: it halves
at once and the climb slows (halved per such streak, three at most), so a fleet configured far
above Stripe's limit settles near it with few 429s.

``memory_rate_limit.MemoryRateLimiter`` is the in-process twin with the same interface and
arithmetic (one process only; used by tests and single-process commands).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from vsbatch.errors import LockLostError, RateLimitBusy
from vsbatch.store.keys import Keys
from vsbatch.store.scripts import lua_script

if TYPE_CHECKING:
    import redis

    from vsbatch.store.locks import Fence


__all__ = [
    "RateLimitBusy",
    "RateLimiter",
    "RedisRateLimiter",
    "Slot",
]

Rate = float | Callable[[str | None], float]


# Tuned with the bench's accounts scenario (4 accounts x 25/s) and the fault matrix's 429
# storm (a fleet at 5x Stripe's limit): the old halving with a 20 s linear recovery lost a
# third of the throughput to one stray 429; these recover in under a second.
BACKOFF = 0.85
PROBE = 0.25
# Below this share of the rate that drew the first 429, one window does not cut; a streak's
# first cut goes straight to it.
DEEPEST_CUT = 0.5
MAX_STREAK = 3
# A 429 at the ceiling is a burst (keep ``backoff``); below it, while still climbing, the
# ceiling is wrong (halve). "At" with rounding slack; the same numbers are in gcra.lua. A
# looser threshold (90 %) measured no better in the bench and, against a ceiling 25 % above
# Stripe's limit, kept a steady 429 every second instead of settling.
AT_CEILING = 0.999


# Seconds a slot reserved by a row's claim stays good for its first request. The claim
# checked the session's lock; a worker is declared dead (its locks taken over) only after
# ``liveness.MISSED_BEATS`` heartbeat intervals (15 s) without a beat, so a slot used within a
# second was fenced by its claim. Past that the worker was paused: its request reserves a
# slot anew, checking the lock in the same step (the claim's slot goes unused).
FRESH_SLOT = 1.0


class Slot(NamedTuple):
    """A reserved send slot: how long to wait, and when it is in the limiter's clock;
    ``taken``: when a claim reserved it, in the limiter's monotonic clock."""

    wait: float
    at: float
    taken: float = 0.0


class RateLimiter(ABC):
    """Reserve send slots per Stripe account; ``None`` means the platform account.

    Args:
        rate: Requests per second, or a function of the account giving it (the ceiling).
        burst: Requests that may go at once after an idle spell (>= 1).
        sleep: How to sleep (injected, so tests never really sleep).
        max_wait: Seconds; a slot further away than this is not reserved.
        probe: Additive increase after a 429: the share of the rate that drew it, added back
            per second (halved per streak level).
        min_rate: Floor of the rate after penalties (requests per second).
        penalty_window: Seconds after a window's first cut during which further 429s (of
            requests reserved after a cut) belong to the same overload: each cuts ``backoff``
            deeper, down to half the rate that drew the first (Stripe's window is 1 s).
        backoff: The share of the rate kept per 429 (multiplicative decrease).
    """

    def __init__(
        self,
        rate: Rate,
        *,
        burst: int = 1,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 30.0,
        probe: float = PROBE,
        min_rate: float = 1.0,
        penalty_window: float = 1.0,
        backoff: float = BACKOFF,
    ) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if not 0 < backoff < 1:
            raise ValueError("backoff must be between 0 and 1")
        if probe <= 0:
            raise ValueError("probe must be positive")
        self._rate = rate
        self.burst = burst
        self._sleep = sleep
        self.max_wait = max_wait
        self.probe = probe
        self.min_rate = min_rate
        self.penalty_window = penalty_window
        self.backoff = backoff
        self._local = threading.local()  # per thread: account -> its last reservation time

    def configured_rate(self, account: str | None) -> float:
        """The configured (unpenalized) rate of the account, requests per second."""
        rate = self._rate(account) if callable(self._rate) else self._rate
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        return float(rate)

    # Whether ``wait``'s fence is checked in the same step as the slot (the Redis limiter);
    # without it the caller confirms its lock itself.
    checks_fence = False

    def wait(
        self, account: str | None, fence: Fence | None = None, slot: Slot | None = None
    ) -> float:
        """Reserve the account's next slot and sleep until it comes.

        Args:
            account: The Stripe account (``None``: the platform).
            fence: A session lock the caller holds: where the limiter ``checks_fence``, the
                slot is taken only while the lock holds the fence's token (its TTL reset).
            slot: A slot already reserved for this request (by :meth:`adopt`): only sleep
                until it comes.

        Returns:
            The seconds slept (0.0 when the slot was free at once).

        Raises:
            RateLimitBusy: The slot is further than ``max_wait`` away; nothing was reserved.
            LockLostError: The fence's lock was lost; nothing was reserved.
        """
        delay = None if slot is None else self._left(slot)
        if delay is None:
            delay = self.reserve_slot(account, fence).wait
        if delay > 0:
            self._sleep(delay)
        return delay

    def reserve(self, account: str | None) -> float:
        """Reserve the account's next slot without sleeping.

        Returns:
            Seconds to wait before sending.

        Raises:
            RateLimitBusy: The slot is further than ``max_wait`` away; nothing was reserved.
        """
        return self.reserve_slot(account).wait

    def reserve_slot(self, account: str | None, fence: Fence | None = None) -> Slot:
        """Reserve the account's next slot; also say when it is, in the limiter's clock.

        The calling thread's reservation is remembered: a 429 it then reports (``penalize``)
        concerns the request sent in that slot.

        Raises:
            RateLimitBusy: The slot is further than ``max_wait`` away; nothing was reserved.
        """
        return self._remember(account, self._reserve(account, fence))

    def _remember(self, account: str | None, slot: Slot) -> Slot:
        """Keep the calling thread's last reservation for the account (see ``penalize``)."""
        reserved: dict[str | None, float] = self._local.__dict__.setdefault("reserved", {})
        reserved[account] = slot.at - slot.wait
        return slot

    def penalize(self, account: str | None, reserved_at: float | None = None) -> None:
        """Stripe answered 429 ``rate_limit``: cut the account's rate (multiplicative decrease,
        see the module docstring); it then climbs back by ``probe`` per second.

        Args:
            account: The Stripe account (``None``: the platform).
            reserved_at: When the 429'd request's slot was reserved, in the limiter's clock;
                by default the calling thread's last reservation for the account. A request
                reserved before the last cut was sent at the old rate: its 429 is part of the
                overload already cut for (requests in flight), so it does not cut again.
        """
        if reserved_at is None:
            reserved_at = self._local.__dict__.get("reserved", {}).get(account)
        self._penalize(account, reserved_at)

    def _left(self, slot: Slot) -> float | None:
        """The seconds left before a slot a claim reserved (``adopt``) comes, or None when it
        cannot be used (no longer fenced by its claim)."""
        return None

    @abstractmethod
    def _reserve(self, account: str | None, fence: Fence | None = None) -> Slot:
        """Reserve the account's next slot (see :meth:`reserve_slot`)."""

    @abstractmethod
    def _penalize(self, account: str | None, reserved_at: float | None) -> None:
        """Cut the account's rate unless the request was reserved before the last cut."""

    @abstractmethod
    def current_rate(self, account: str | None) -> float:
        """The account's effective rate now, requests per second."""


class RedisRateLimiter(RateLimiter):
    """The fleet-wide limiter: state per account in Redis, arithmetic in ``gcra.lua``.

    Args:
        client: A redis-py client.
        rate: Requests per second, or a function of the account giving it (for example
            ``Settings.effective_rate_limit``).
        prefix: Namespace of the keys (``<prefix>:rl:<account>``).
        clock: Monotonic seconds (injected, so tests can pause a worker past ``FRESH_SLOT``).
        Other arguments: as :class:`RateLimiter`.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        rate: Rate,
        burst: int = 1,
        prefix: str = "vsbatch",
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 30.0,
        probe: float = PROBE,
        min_rate: float = 1.0,
        penalty_window: float = 1.0,
        backoff: float = BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            rate,
            burst=burst,
            sleep=sleep,
            max_wait=max_wait,
            probe=probe,
            min_rate=min_rate,
            penalty_window=penalty_window,
            backoff=backoff,
        )
        self._clock = clock  # monotonic: how old a claim's slot is (``FRESH_SLOT``)
        self.keys = Keys(prefix)
        self._script = client.register_script(lua_script("gcra.lua"))

    checks_fence = True

    def slot_script_args(self) -> list[str | int] | None:
        """The arguments of a "reserve" that another script makes with its own work, for
        whichever account its row turns out to be (``claim_row.lua`` takes a row's first
        slot with its claim; see :meth:`adopt`): the keys' prefix, then ``gcra.lua``'s. None
        when the rate differs by account (the script cannot know which to use)."""
        if callable(self._rate):
            return None
        return [self.keys.rate_prefix, *self._args("reserve", None, None)]

    def adopt(self, account: str | None, reply: Sequence[Any]) -> Slot | None:
        """The slot another script reserved (``gcra.lua``'s reply), remembered as
        :meth:`reserve_slot` does; None when it took none (too far away: the caller's own
        reservation then raises ``RateLimitBusy``)."""
        code, wait_ms, _, slot_ms = reply
        if int(code) != 1:
            return None
        slot = Slot(float(wait_ms) / 1000, float(slot_ms) / 1000, self._clock())
        return self._remember(account, slot)

    def _left(self, slot: Slot) -> float | None:
        # Its wait counted from the claim: the time since (decoding the row, building the
        # request, a thread slow to get the GIL) is already spent waiting.
        elapsed = self._clock() - slot.taken
        return None if elapsed > FRESH_SLOT else max(0.0, slot.wait - elapsed)

    def _args(self, op: str, account: str | None, reserved_at: float | None) -> list[str | int]:
        return [
            op,
            repr(self.configured_rate(account)),
            self.burst,
            repr(self.max_wait * 1000),
            repr(self.probe),
            repr(self.min_rate),
            repr(self.penalty_window * 1000),
            repr(self.backoff),
            "" if reserved_at is None else repr(reserved_at * 1000),
            repr(DEEPEST_CUT),
            MAX_STREAK,
            repr(AT_CEILING),
        ]

    def _call(
        self,
        op: str,
        account: str | None,
        reserved_at: float | None = None,
        fence: Fence | None = None,
    ) -> tuple[int, float, float, float]:
        keys = [self.keys.rate(account)]
        args = self._args(op, account, reserved_at)
        if fence is not None:
            keys.append(fence.key)
            args += [fence.token, fence.ttl_ms]
        code, wait_ms, rate, slot_ms = cast(list[bytes], self._script(keys=keys, args=args))
        return int(code), float(wait_ms) / 1000, float(rate), float(slot_ms) / 1000

    def _reserve(self, account: str | None, fence: Fence | None = None) -> Slot:
        """Reserve the account's next slot; ``at`` is Redis server time (epoch seconds)."""
        code, wait, _, at = self._call("reserve", account, fence=fence)
        if code < 0:
            raise LockLostError(f"lost the lock {fence.key if fence else ''}: taken over")
        if code == 0:
            raise RateLimitBusy(account, wait)
        return Slot(wait, at)

    def _penalize(self, account: str | None, reserved_at: float | None) -> None:
        """Cut the account's rate for the whole fleet (see :meth:`RateLimiter.penalize`)."""
        self._call("penalize", account, reserved_at)

    def current_rate(self, account: str | None) -> float:
        """The account's effective rate now, as the fleet sees it."""
        return self._call("rate", account)[2]
