"""Preflight through real ``vsbatch`` processes: a wrong key, an unreachable base, a TLS
failure or a server that is not Stripe ends the command in seconds, before anything is staged."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import TEST_API_KEY
from tests.e2e.stub_servers import NotStripe, RefusingStripe, StubServer
from tests.helpers import closed_port, outside_env, run_vsbatch

MIGRATIONS = """
[[migration]]
name = "tier"

[migration.select]
status = "requires_input"

[[migration.action]]
op = "set"
values = {tier = "gold"}
"""


@pytest.fixture
def stubs() -> Iterator[Callable[[type[StubServer]], StubServer]]:
    """Starts stub servers on demand; stops them after the test."""
    started: list[StubServer] = []

    def start(kind: type[StubServer]) -> StubServer:
        started.append(kind().start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


def _base(kind: str, stubs: Callable[[type[StubServer]], StubServer]) -> tuple[str, str]:
    """(base URL, cause expected in the error line) for one way of being wrong."""
    if kind == "unreachable":
        return f"http://127.0.0.1:{closed_port()}", "cannot connect"
    if kind == "not-stripe":
        return stubs(NotStripe).url, "not Stripe's (HTTP 200, text/html)"
    if kind == "wrong-key":
        return stubs(RefusingStripe).url, "API key was refused (HTTP 401"
    # TLS spoken to a plain-HTTP server: the handshake fails.
    return stubs(NotStripe).url.replace("http://", "https://"), "TLS failed"


def _run(tmp_path: Path, redis_url: str, base: str, *args: str, key: str = TEST_API_KEY) -> Any:
    env = outside_env(
        VSBATCH_REDIS_URL=redis_url,
        VSBATCH_STRIPE_API_BASE=base,
        VSBATCH_STRIPE_API_KEY=key,
        VSBATCH_MAX_ATTEMPTS="2",
        VSBATCH_RETRY_MAX_SECONDS="5",
        VSBATCH_HTTP_TIMEOUT="2",
        VSBATCH_RATE_LIMIT="200",
        VSBATCH_MIGRATIONS_FILE=str(tmp_path / "migrations.toml"),
    )
    (tmp_path / "migrations.toml").write_text(MIGRATIONS, encoding="utf-8")
    csv = tmp_path / "in.csv"
    csv.write_text(f"id,metadata.tier\nvs_{'A' * 24},gold\n", encoding="utf-8")
    argv = [a.replace("FILE", str(csv)) for a in args]
    started = time.monotonic()
    result = run_vsbatch(env, *argv)
    return result, time.monotonic() - started


class TestPreflight:
    @pytest.mark.parametrize("kind", ["unreachable", "not-stripe", "wrong-key", "tls"])
    @pytest.mark.parametrize(
        "command", [("run", "FILE"), ("submit", "FILE")], ids=["run", "submit"]
    )
    def test_bad_destination_ends_in_seconds_with_nothing_staged(
        self,
        stubs: Callable[[type[StubServer]], StubServer],
        redis_url: str,
        redis_client: redis.Redis,
        tmp_path: Path,
        kind: str,
        command: tuple[str, ...],
    ) -> None:
        """Exit 2, one line naming the URL and the cause, within seconds, Redis left empty."""
        base, cause = _base(kind, stubs)

        result, seconds = _run(tmp_path, redis_url, base, *command)

        lines = result.stderr.strip().splitlines()
        assert (2, 1) == (result.returncode, len(lines)), result.stderr
        assert lines[0].startswith(f"error: preflight GET {base}/v1/identity/"), lines[0]
        assert cause in lines[0] and "nothing was staged" in lines[0], lines[0]
        assert "SECRET" not in result.stderr + result.stdout
        assert seconds < 30
        assert 0 == redis_client.dbsize()

    @pytest.mark.parametrize(
        "command",
        [
            ("plan", "FILE"),
            ("verify", "b_none"),
            ("migrate", "plan", "tier"),
            ("migrate", "run", "tier"),
        ],
        ids=["plan", "verify", "migrate-plan", "migrate-run"],
    )
    def test_other_commands_that_talk_to_stripe_check_first(
        self, redis_url: str, redis_client: redis.Redis, tmp_path: Path, command: tuple[str, ...]
    ) -> None:
        """plan, verify and migrate plan|run stop at the preflight on an unreachable base."""
        base = f"http://127.0.0.1:{closed_port()}"

        result, _ = _run(tmp_path, redis_url, base, *command)

        assert 2 == result.returncode, result.stderr
        assert result.stderr.startswith(f"error: preflight GET {base}/"), result.stderr
        assert 0 == redis_client.dbsize()

    def test_emulator_passes_and_the_batch_runs(
        self, emulator: Any, redis_url: str, redis_client: redis.Redis, tmp_path: Path
    ) -> None:
        """Against the real emulator the preflight passes and ``run`` applies the row."""
        emulator.seed(count=1, ids=[f"vs_{'A' * 24}"])

        result, _ = _run(tmp_path, redis_url, emulator.url, "run", "FILE", "--format", "json")

        assert 0 == result.returncode, result.stderr
        assert '"succeeded": 1' in result.stdout

    def test_key_with_a_newline_is_used_without_it(
        self, emulator: Any, redis_url: str, redis_client: redis.Redis, tmp_path: Path
    ) -> None:
        """A key pasted with spaces and a newline runs the batch to its end."""
        emulator.seed(count=1, ids=[f"vs_{'A' * 24}"])

        result, _ = _run(
            tmp_path, redis_url, emulator.url, "run", "FILE", key=f"  {TEST_API_KEY}\n"
        )

        assert 0 == result.returncode, result.stderr
