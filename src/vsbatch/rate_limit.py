"""The rate limiter: one request rate per Stripe account, shared by the whole fleet.

Stripe limits requests per account (test 25/s, live 100/s), not per worker, so every worker
process on every machine reserves its send slots from one GCRA schedule in Redis
(``lua/gcra.lua``, server time). Each call takes the next slot and learns how long to sleep
before sending, so N workers together send smoothly at the rate, with no polling. A 429
``rate_limit`` from Stripe cuts the account's rate for the fleet (to ``backoff`` of it), which
then recovers linearly to the configured rate over ``recovery`` seconds without more 429s.

``MemoryRateLimiter`` is the in-process twin with the same interface and arithmetic (one
process only; used by tests and single-process commands).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from vsbatch.errors import RateLimitBusy

__all__ = ["MemoryRateLimiter", "RateLimitBusy", "RateLimiter", "RedisRateLimiter"]
from vsbatch.ledger import Keys, lua_script

if TYPE_CHECKING:
    import redis

    from vsbatch.config import Settings

__all__ = ["MemoryRateLimiter", "RateLimitBusy", "RateLimiter", "RedisRateLimiter"]

Rate = float | Callable[[str | None], float]


# A 429 halves the rate (once per cooldown) and it recovers linearly over 20 s: enough to pull a
# fleet configured far above Stripe's limit down to it (a quarter cut with 10 s recovery settled
# at 35/s against a 20/s limit in tests/reliability). Near the limit each 429 costs throughput,
# which is why the default rate is 80 % of Stripe's.
BACKOFF = 0.5
RECOVERY = 20.0


class RateLimiter(ABC):
    """Reserve send slots per Stripe account; ``None`` means the platform account.

    Args:
        rate: Requests per second, or a function of the account giving it.
        burst: Requests that may go at once after an idle spell (>= 1).
        sleep: How to sleep (injected, so tests never really sleep).
        max_wait: Seconds; a slot further away than this is not reserved.
        recovery: Seconds from a penalty back to the configured rate.
        min_rate: Floor of the rate after penalties (requests per second).
        penalty_cooldown: Seconds during which further penalties do not cut again.
        backoff: The share of the current rate kept after a 429 (multiplicative decrease).
    """

    def __init__(
        self,
        rate: Rate,
        *,
        burst: int = 1,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 30.0,
        recovery: float = RECOVERY,
        min_rate: float = 1.0,
        penalty_cooldown: float = 1.0,
        backoff: float = BACKOFF,
    ) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._rate = rate
        self.burst = burst
        self._sleep = sleep
        self.max_wait = max_wait
        self.recovery = recovery
        self.min_rate = min_rate
        self.penalty_cooldown = penalty_cooldown
        if not 0 < backoff < 1:
            raise ValueError("backoff must be between 0 and 1")
        self.backoff = backoff

    def configured_rate(self, account: str | None) -> float:
        """The configured (unpenalized) rate of the account, requests per second."""
        rate = self._rate(account) if callable(self._rate) else self._rate
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        return float(rate)

    def wait(self, account: str | None) -> float:
        """Reserve the account's next slot and sleep until it comes.

        Returns:
            The seconds slept (0.0 when the slot was free at once).

        Raises:
            RateLimitBusy: The slot is further than ``max_wait`` away; nothing was reserved.
        """
        delay = self.reserve(account)
        if delay > 0:
            self._sleep(delay)
        return delay

    @abstractmethod
    def reserve(self, account: str | None) -> float:
        """Reserve the account's next slot without sleeping.

        Returns:
            Seconds to wait before sending.

        Raises:
            RateLimitBusy: The slot is further than ``max_wait`` away; nothing was reserved.
        """

    @abstractmethod
    def penalize(self, account: str | None) -> None:
        """Stripe answered 429 ``rate_limit``: cut the account's rate by ``backoff`` (to the floor
        at most); it recovers linearly over ``recovery`` seconds."""

    @abstractmethod
    def current_rate(self, account: str | None) -> float:
        """The account's effective rate now, requests per second."""


class RedisRateLimiter(RateLimiter):
    """The fleet-wide limiter: state per account in Redis, arithmetic in ``gcra.lua``.

    Args:
        client: A redis-py client.
        rate: Requests per second, or a function of the account giving it (for example
            ``Settings.effective_rate_limit``, see :meth:`from_settings`).
        prefix: Namespace of the keys (``<prefix>:rl:<account>``).
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
        recovery: float = RECOVERY,
        min_rate: float = 1.0,
        penalty_cooldown: float = 1.0,
        backoff: float = BACKOFF,
    ) -> None:
        super().__init__(
            rate,
            burst=burst,
            sleep=sleep,
            max_wait=max_wait,
            recovery=recovery,
            min_rate=min_rate,
            penalty_cooldown=penalty_cooldown,
            backoff=backoff,
        )
        self.keys = Keys(prefix)
        self._script = client.register_script(lua_script("gcra.lua"))

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> RedisRateLimiter:
        """A limiter at ``settings.effective_rate_limit`` for every account."""
        return cls(client, rate=settings.effective_rate_limit)

    def _call(self, op: str, account: str | None) -> tuple[int, float, float]:
        args: list[str | int] = [
            op,
            repr(self.configured_rate(account)),
            self.burst,
            repr(self.max_wait * 1000),
            repr(self.recovery * 1000),
            repr(self.min_rate),
            repr(self.penalty_cooldown * 1000),
            repr(self.backoff),
        ]
        code, wait_ms, rate = cast(
            list[bytes], self._script(keys=[self.keys.rate(account)], args=args)
        )
        return int(code), float(wait_ms) / 1000, float(rate)

    def reserve(self, account: str | None) -> float:
        """Reserve the account's next slot (see :meth:`RateLimiter.reserve`)."""
        code, wait, _ = self._call("reserve", account)
        if code == 0:
            raise RateLimitBusy(account, wait)
        return wait

    def penalize(self, account: str | None) -> None:
        """Cut the account's rate for the whole fleet (see :meth:`RateLimiter.penalize`)."""
        self._call("penalize", account)

    def current_rate(self, account: str | None) -> float:
        """The account's effective rate now, as the fleet sees it."""
        return self._call("rate", account)[2]


class _State:
    __slots__ = ("penalized_at", "penalized_rate", "tat")

    def __init__(self) -> None:
        self.tat = 0.0
        self.penalized_rate: float | None = None
        self.penalized_at: float | None = None


class MemoryRateLimiter(RateLimiter):
    """The in-process twin of :class:`RedisRateLimiter` (same arithmetic, seconds).

    Args:
        rate: Requests per second, or a function of the account giving it.
        clock: Monotonic seconds (injected, so tests drive time).
        Other arguments: as :class:`RateLimiter`.
    """

    def __init__(
        self,
        rate: Rate,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 30.0,
        recovery: float = RECOVERY,
        min_rate: float = 1.0,
        penalty_cooldown: float = 1.0,
        backoff: float = BACKOFF,
    ) -> None:
        super().__init__(
            rate,
            burst=burst,
            sleep=sleep,
            max_wait=max_wait,
            recovery=recovery,
            min_rate=min_rate,
            penalty_cooldown=penalty_cooldown,
            backoff=backoff,
        )
        self._clock = clock
        self._states: dict[str | None, _State] = {}
        self._lock = threading.Lock()  # threads of one process share the schedule

    def _rate_now(self, account: str | None, state: _State, now: float) -> float:
        cfg = self.configured_rate(account)
        pr, pt = state.penalized_rate, state.penalized_at
        if pr is None or pt is None or self.recovery <= 0 or now - pt >= self.recovery:
            return cfg
        return min(cfg, pr + (cfg - pr) * max(now - pt, 0.0) / self.recovery)

    def reserve(self, account: str | None) -> float:
        """Reserve the account's next slot (see :meth:`RateLimiter.reserve`)."""
        with self._lock:
            now = self._clock()
            state = self._states.setdefault(account, _State())
            interval = 1 / self._rate_now(account, state, now)
            base = max(state.tat, now)
            wait = max(base - (self.burst - 1) * interval - now, 0.0)
            if wait > self.max_wait:
                raise RateLimitBusy(account, wait)
            state.tat = base + interval
            return wait

    def penalize(self, account: str | None) -> None:
        """Cut the account's rate (see :meth:`RateLimiter.penalize`)."""
        with self._lock:
            now = self._clock()
            state = self._states.setdefault(account, _State())
            if state.penalized_at is not None and now - state.penalized_at < self.penalty_cooldown:
                return
            rate = self._rate_now(account, state, now)
            floor = min(self.min_rate, self.configured_rate(account))
            state.penalized_rate = max(floor, rate * self.backoff)
            state.penalized_at = now

    def current_rate(self, account: str | None) -> float:
        """The account's effective rate now."""
        with self._lock:
            now = self._clock()
            return self._rate_now(account, self._states.setdefault(account, _State()), now)
