"""The fleet test in pytest: the netns toolkit, and one short scenario (the partition).

Runs as root where ``ip netns`` works, and skips with the reason otherwise. The full table
(every scenario, the issue's durations: about 6.5 minutes) is ``python -m tests.fleet``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import settings_from, worker_env
from tests.fleet.netns import Network, unavailable
from tests.fleet.scenarios import SCENARIOS, Sizes, open_fleet, run_scenario
from vsbatch.worker.celery_app import configure

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"fleet test skipped: {REASON}")


def _reaches(net: Network, source: str, target: str) -> bool:
    ping = ["ip", "netns", "exec", net.ns(source), "python3", "-c", _CONNECT]
    address = net.addresses[target]
    return subprocess.run([*ping, address], capture_output=True).returncode == 0


# A TCP connect to port 9 (nothing listens): refused means the host answered, a timeout that
# it did not.
_CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=1.0)
except ConnectionRefusedError:
    sys.exit(0)
except OSError:
    sys.exit(1)
"""


@pytest.fixture
def net() -> Iterator[Network]:
    with Network(["a", "b", "c"]) as network:
        yield network


class TestNetwork:
    def test_partition_cuts_two_hosts_apart_and_heals(self, net: Network) -> None:
        """A partition loses the frames between its two hosts only, until healed."""
        # Given three hosts that reach each other
        assert _reaches(net, "a", "b") and _reaches(net, "a", "c")

        # When a and b are partitioned
        net.partition("a", "b")

        # Then neither reaches the other, while c reaches both
        assert (False, False) == (_reaches(net, "a", "b"), _reaches(net, "b", "a"))
        assert (True, True) == (_reaches(net, "c", "a"), _reaches(net, "c", "b"))
        # ... and once healed they do again
        net.partition("a", "b", heal=True)
        assert _reaches(net, "a", "b")

    def test_close_leaves_no_namespace_or_link(self) -> None:
        """Closing the network removes its namespaces, veths and bridge."""
        network = Network(["a", "b"]).open()
        network.close()

        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
        assert [] == [line for line in (listed + links).splitlines() if network.tag in line]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_partitioned_worker_fleet_finishes_exactly_once(
    tmp_path: Path, redis_url: str, emulator: Any
) -> None:
    """With w1 cut off from Redis mid-batch, every row ends once and no session twice."""
    name = next(n for n in SCENARIOS if n.startswith("a."))
    try:
        with open_fleet(tmp_path, Sizes.quick()) as fleet:
            result = run_scenario(fleet, name, SCENARIOS[name])
    finally:
        # Put the Celery app back on the session's test Redis for the tests that follow.
        configure(settings_from(worker_env(redis_url, emulator.url)))

    assert ([], True, 0) == (result.problems, result.exactly_once, result.applied_twice)
    assert "cut off from Redis" in result.evidence
