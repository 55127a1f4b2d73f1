"""Integration fixtures: process dependencies on the test Redis and the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TEST_API_KEY
from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.config import Settings


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
