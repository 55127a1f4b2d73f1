"""The in-memory rate limiter's arithmetic, driven by an injected clock (no sockets)."""

from __future__ import annotations

import pytest

from vsbatch.config import Settings
from vsbatch.store.memory_rate_limit import MemoryRateLimiter


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class TestMemoryRateLimiter:
    def test_idle_spell_frees_the_schedule(self, clock: FakeClock) -> None:
        """After an idle spell longer than the backlog the next slot is now again."""
        limiter = MemoryRateLimiter(10, clock=clock)
        for _ in range(5):
            limiter.reserve("acct_1")

        clock.now += 1.0

        assert 0.0 == limiter.reserve("acct_1")

    def test_climb_is_additive(self, clock: FakeClock) -> None:
        """After a 429 the rate climbs by ``probe`` of the rate that drew it, per second."""
        limiter = MemoryRateLimiter(20, clock=clock, probe=0.25, backoff=0.5)
        limiter.penalize("acct_1")

        clock.now += 1.0

        assert pytest.approx(15.0) == limiter.current_rate("acct_1")

    def test_climb_stops_at_the_configured_rate(self, clock: FakeClock) -> None:
        """The additive climb never goes above the configured rate."""
        limiter = MemoryRateLimiter(20, clock=clock)
        limiter.penalize("acct_1")

        clock.now += 30.0

        assert 20.0 == limiter.current_rate("acct_1")

    def test_streak_halves_the_climb(self, clock: FakeClock) -> None:
        """A 429 while still climbing halves the rate and the climb's slope."""
        limiter = MemoryRateLimiter(20, clock=clock, probe=0.25, penalty_window=0.1)
        limiter.penalize("acct_1")  # 17/s, climbing 5/s per second
        clock.now += 0.1  # 17.5/s, a new window, below 90 % of the ceiling
        limiter.penalize("acct_1")  # 8.75/s, climbing 17.5 * 0.25 / 2 per second

        clock.now += 2.0

        assert pytest.approx(8.75 + 2 * 17.5 * 0.25 / 2) == limiter.current_rate("acct_1")

    def test_429_at_the_ceiling_ends_a_streak(self, clock: FakeClock) -> None:
        """Once the rate is back at the ceiling, the next 429 is a lone one again (keeps 85 %)."""
        limiter = MemoryRateLimiter(20, clock=clock, penalty_window=0.1)
        limiter.penalize("acct_1")
        clock.now += 0.2
        limiter.penalize("acct_1")  # a streak: halved
        clock.now += 60.0

        limiter.penalize("acct_1")

        assert pytest.approx(17.0) == limiter.current_rate("acct_1")

    def test_fleet_far_above_the_limit_settles_near_it(self, clock: FakeClock) -> None:
        """Configured at 5x a 20/s sliding-window limit, 429s stop early and the rate settles.

        A fleet that is never idle (latency 0) sends every slot the limiter gives; the fake
        Stripe admits 20 requests per sliding second and answers 429 to the rest.
        """
        limiter = MemoryRateLimiter(100, clock=clock)
        admitted: list[float] = []
        refused: list[float] = []
        start = clock.now
        while clock.now < start + 20:
            clock.now += limiter.reserve("acct_1")
            recent = [t for t in admitted[-20:] if t > clock.now - 1.0]
            if len(recent) < 20:
                admitted.append(clock.now)
            else:
                refused.append(clock.now)
                limiter.penalize("acct_1")

        late_rate = sum(1 for t in admitted if t >= start + 10) / 10
        late_429s = sum(1 for t in refused if t >= start + 10)
        assert (True, True, True) == (len(refused) < 80, late_429s <= 5, late_rate >= 12), (
            len(refused),
            late_429s,
            late_rate,
        )

    def test_floor_never_above_configured_rate(self, clock: FakeClock) -> None:
        """An account configured below min_rate is not raised to it by a penalty."""
        limiter = MemoryRateLimiter(0.5, clock=clock, min_rate=1.0)

        limiter.penalize("acct_1")

        assert 0.5 == limiter.current_rate("acct_1")

    def test_non_positive_rate_refused(self, clock: FakeClock) -> None:
        """A rate function returning 0 is a configuration error, not a division by zero."""
        limiter = MemoryRateLimiter(lambda _account: 0.0, clock=clock)

        with pytest.raises(ValueError):
            limiter.reserve(None)

    def test_rate_from_settings(self, clock: FakeClock) -> None:
        """The settings' effective rate drives the spacing."""
        settings = Settings(rate_limit=4.0, _env_file=None)
        limiter = MemoryRateLimiter(settings.effective_rate_limit, clock=clock)

        assert [0.0, 0.25] == [limiter.reserve(None), limiter.reserve(None)]
