"""Metrics: the helper functions move the documented series, per account."""

from __future__ import annotations

from prometheus_client import REGISTRY

from vsbatch.ops import metrics


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestMetrics:
    def test_row_outcomes_counted_per_account(self) -> None:
        """observe_row counts by outcome, reason and account (None is the platform)."""
        before = _value(
            "vsbatch_rows_total", outcome="skipped", reason="unchanged", account="platform"
        )

        metrics.observe_row("skipped", "unchanged", None)

        after = _value(
            "vsbatch_rows_total", outcome="skipped", reason="unchanged", account="platform"
        )
        assert 1.0 == after - before

    def test_attempt_counts_and_times_by_status(self) -> None:
        """observe_attempt counts the result and records latency under the HTTP status."""
        labels = {"status": "429", "account": "acct_unit"}
        before = _value("vsbatch_stripe_request_seconds_count", **labels)

        metrics.observe_attempt("rate_limit", 429, 0.2, "acct_unit")

        assert 1.0 == _value("vsbatch_stripe_request_seconds_count", **labels) - before
        assert 1.0 <= _value("vsbatch_attempts_total", result="rate_limit", account="acct_unit")

    def test_in_flight_goes_back_down(self) -> None:
        """The in-flight gauge counts a row inside the block only."""
        with metrics.in_flight("acct_gauge"):
            inside = _value("vsbatch_rows_in_flight", account="acct_gauge")

        assert (1.0, 0.0) == (inside, _value("vsbatch_rows_in_flight", account="acct_gauge"))
