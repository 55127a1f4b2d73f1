"""Integration fixtures: process dependencies on the test Redis and the emulator, the ledger on
a settable clock, and an authenticated client for the emulator's Stripe routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import stripe

from tests.conftest import TEST_API_KEY
from tests.stripe_contract import RecordingClient, check_answers, official_client
from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.config import Settings
from vsbatch.store.ledger import Ledger


@pytest.fixture
def deps(redis_url: str, redis_client: Any, emulator: Any) -> Iterator[Deps]:
    """Dependencies on the flushed test Redis and the reset emulator: 3 attempts, no backoff,
    a 0.5 s read timeout and a rate limit far above what a test sends."""
    settings = Settings(
        _env_file=None,
        redis_url=redis_url,
        stripe_api_key=TEST_API_KEY,
        stripe_api_base=emulator.url,
        max_attempts=3,
        retry_initial_wait=0,
        http_timeout=0.5,
        rate_limit=1000,
    )
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def recorder() -> RecordingClient:
    """stripe-python's HTTP client, keeping every answer it gets."""
    return RecordingClient()


@pytest.fixture
def library(emulator: Any, recorder: RecordingClient) -> Iterator[stripe.StripeClient]:
    """The official library on the emulator (no retries, no rate limit), recording answers.

    At teardown every answer it got from a ``/v1`` route must fit Stripe's OpenAPI subset.
    """
    emulator.configure(rate_limit=0)
    yield official_client(emulator.url, recorder)
    check_answers(recorder.answers)


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(redis_client: redis.Redis, clock: Clock) -> Ledger:
    """A ledger on the test Redis with a one-hour retention and a settable clock."""
    return Ledger(redis_client, retention_seconds=3600, clock=clock)


BASE = "/v1/identity/verification_sessions"


@pytest.fixture
def api(emulator: Any) -> Iterator[httpx.Client]:
    """An httpx client authenticated with a test key, rate limit off."""
    emulator.configure(rate_limit=0)
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    with httpx.Client(base_url=emulator.url, headers=headers, timeout=5) as client:
        yield client
