"""The in-memory rate limiter's arithmetic, driven by an injected clock (no sockets)."""

from __future__ import annotations

import pytest

from vsbatch.config import Settings
from vsbatch.rate_limit import MemoryRateLimiter


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

    def test_recovery_is_linear(self, clock: FakeClock) -> None:
        """Halfway through the recovery window the rate is halfway back."""
        limiter = MemoryRateLimiter(10, clock=clock, recovery=20, backoff=0.5)
        limiter.penalize("acct_1")

        clock.now += 10

        assert pytest.approx(7.5) == limiter.current_rate("acct_1")

    def test_penalty_during_recovery_cuts_current_rate(self, clock: FakeClock) -> None:
        """A second 429 halves the partly recovered rate, not the configured one."""
        limiter = MemoryRateLimiter(10, clock=clock, recovery=20, backoff=0.5)
        limiter.penalize("acct_1")
        clock.now += 10

        limiter.penalize("acct_1")

        assert pytest.approx(3.75) == limiter.current_rate("acct_1")

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
