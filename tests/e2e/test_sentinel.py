"""Redis Sentinel for real: a master, its replica and two sentinels started by the test, the
ledger (redis-py's Sentinel client) and Celery's broker (kombu's Sentinel transport) both on
a ``sentinel://`` URL list, a batch through a real worker process, and a failover mid-batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import worker_env
from tests.e2e.topology import Topology, exactly_once_violations, on_topology, run_batch
from tests.helpers import run_vsbatch
from tests.redis_servers import (
    MASTER_NAME,
    SENTINEL_PASSWORD,
    SentinelSet,
    servers,
    start_sentinel_set,
)
from vsbatch.model.row import BatchInfo

pytestmark = pytest.mark.slow

ROWS = 120


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    """A master, a replica and two sentinels on free ports, killed at the end."""
    with servers() as started:
        yield start_sentinel_set(tmp_path / "redis", started)


def sentinel_env(found: SentinelSet, emulator: Any) -> dict[str, str]:
    """Workers and producer on the sentinels: the master's name and the sentinels' password."""
    return {
        **worker_env(found.url, emulator.url),
        "VSBATCH_REDIS_SENTINEL_MASTER": MASTER_NAME,
        "VSBATCH_REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD,
    }


@pytest.fixture
def topo(
    sentinel_set: SentinelSet, emulator: Any, tmp_path: Path, redis_url: str
) -> Iterator[Topology]:
    with on_topology(sentinel_env(sentinel_set, emulator), emulator, tmp_path, redis_url) as t:
        yield t


class TestSentinel:
    def test_a_batch_survives_a_failover_mid_batch(
        self, sentinel_set: SentinelSet, topo: Topology
    ) -> None:
        """The sentinels promote the replica while rows are in flight; the ledger and the
        broker follow the new master, and every row still ends exactly once."""
        # Given a batch running through a worker, on the master the sentinels name
        first_master = sentinel_set.master_port()

        def fail_over(batch: BatchInfo) -> None:
            if "new_master" not in topo.notes and batch.terminal >= ROWS // 3:
                topo.notes["at"] = batch.terminal
                topo.notes["new_master"] = sentinel_set.failover()

        # When the sentinels fail over a third of the way through
        done, ids = run_batch(topo, ROWS, poll=fail_over, timeout=150)

        # Then the replica became the master while rows were left, and the batch is sound
        assert (sentinel_set.master.port, sentinel_set.replica.port) == (
            first_master,
            topo.notes["new_master"],
        )
        assert topo.notes["at"] < ROWS
        assert [] == exactly_once_violations(topo, done, ids)
        # ... and the ledger the CLI reads is the new master's
        assert done.terminal == topo.deps.ledger.get_batch(done.id).terminal

    def test_status_reads_the_ledger_through_the_sentinels(
        self, sentinel_set: SentinelSet, topo: Topology, tmp_path: Path
    ) -> None:
        """``vsbatch status`` on a sentinel:// URL finds the batch a worker finished."""
        done, _ = run_batch(topo, 10)

        result = run_vsbatch(topo.env, "status", done.id, cwd=tmp_path)

        assert (0, True) == (result.returncode, "10" in result.stdout), result.stderr
        assert SENTINEL_PASSWORD not in result.stdout + result.stderr

    def test_a_missing_master_name_is_one_line(
        self, sentinel_set: SentinelSet, emulator: Any, tmp_path: Path
    ) -> None:
        """Without VSBATCH_REDIS_SENTINEL_MASTER the command says what to set (exit 2)."""
        env = sentinel_env(sentinel_set, emulator)
        del env["VSBATCH_REDIS_SENTINEL_MASTER"]

        result = run_vsbatch(env, "status", cwd=tmp_path)

        assert 2 == result.returncode
        assert "VSBATCH_REDIS_SENTINEL_MASTER" in result.stderr
        assert 1 == len(result.stderr.strip().splitlines()), result.stderr
