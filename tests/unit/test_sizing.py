"""Worker threads by default: enough requests in flight for the configured rate (Little's law)."""

from __future__ import annotations

import pytest

from vsbatch.config import Settings
from vsbatch.worker.sizing import MAX_THREADS, MIN_THREADS, threads_for, worker_threads

# Per-row time besides the request itself (lock, ledger writes, limiter), with room to spare.
ROW_OVERHEAD = 0.1


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, stripe_api_key="sk_test_sizing", **values)  # type: ignore[arg-type]


class TestDefaultThreads:
    @pytest.mark.parametrize(
        ("rate", "latency"),
        [(95.0, 0.3), (95.0, 1.0), (80.0, 1.0), (20.0, 1.0), (100.0, 1.2)],
    )
    def test_defaults_reach_the_rate(self, rate: float, latency: float) -> None:
        """With default settings, threads / time per row is at least the configured rate."""
        settings = _settings(rate_limit=rate)

        threads = worker_threads(settings)

        assert threads / (latency + ROW_OVERHEAD) >= rate, threads

    def test_default_rate_of_a_live_key(self) -> None:
        """A live key's default rate (20/s) gets threads for a 1 s round trip."""
        settings = Settings(_env_file=None, stripe_api_key="sk_live_sizing")

        assert worker_threads(settings) / (1.0 + ROW_OVERHEAD) >= settings.effective_rate_limit

    def test_concurrency_setting_overrides(self) -> None:
        """VSBATCH_CONCURRENCY, when set, is the number of threads, above or below the sizing."""
        assert (7, 500) == (
            worker_threads(_settings(rate_limit=95, concurrency=7)),
            worker_threads(_settings(rate_limit=95, concurrency=500)),
        )


class TestThreadsFor:
    def test_measured_latency_raises_threads(self) -> None:
        """A slow measured round trip gets threads for twice it."""
        assert threads_for(50.0, latency=2.0) >= 50.0 * 2.0 * 2

    def test_fast_measured_latency_never_lowers_threads(self) -> None:
        """A quick preflight does not shrink the pool below the default sizing."""
        assert threads_for(50.0) == threads_for(50.0, latency=0.01)

    def test_bounds(self) -> None:
        """A tiny rate keeps the floor; a huge rate or latency stops at the cap."""
        assert (MIN_THREADS, MAX_THREADS, MAX_THREADS) == (
            threads_for(0.5),
            threads_for(10_000.0),
            threads_for(50.0, latency=60.0),
        )
