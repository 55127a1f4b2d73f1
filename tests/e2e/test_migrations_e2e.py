"""Migrations end to end: emulator listing -> migration batch -> real workers, and beat ticks."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Workers, wait_done
from vsbatch.bootstrap import Deps
from vsbatch.migrations.plan import plan_migration
from vsbatch.migrations.run import run_migration
from vsbatch.migrations.spec import Migration, parse_migrations
from vsbatch.model.row import Outcome
from vsbatch.worker.tasks import enqueue_chunk

CRM = """
[[migration]]
name = "crm"
schedule = "{schedule}"

[migration.select]
status = "requires_input"
metadata_present = ["crm"]

[[migration.action]]
op = "copy"
from = "crm"
to = "crm_id"

[[migration.action]]
op = "unset"
keys = ["crm"]
"""


def crm(schedule: str = "1d") -> Migration:
    return parse_migrations(CRM.format(schedule=schedule))["crm"]


def seed_mix(emulator: Any) -> list[str]:
    """Sessions in every status with a mix of metadata; returns the ids the migration changes."""
    emulator.configure(rate_limit=0)
    ids = [f"vs_crm{n:020d}" for n in range(105)]  # more than one list page
    emulator.seed(ids=ids, metadata={"crm": "c-1", "tier": "gold"})
    emulator.seed(count=3, metadata={"crm_id": "c-0"})  # already migrated
    emulator.seed(count=3, metadata={"tier": "silver"})  # nothing to copy
    for status in ("processing", "verified", "canceled"):
        emulator.seed(count=2, status=status, metadata={"crm": "c-2"})
    return ids


def tick_of(name: str) -> int:
    """The scheduled time a beat run's batch is named for ("migration crm @ <UTC time>")."""
    stamp = re.findall(r"@ (\S+)$", name)[0]
    return int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def migration_batches(deps: Deps) -> list[Any]:
    return [b for b in deps.ledger.list_batches(limit=500) if b.kind == "migration"]


class TestMigrationRun:
    def test_plan_counts_equal_run_results(
        self, emulator: Any, workers: Workers, producer: Deps
    ) -> None:
        """The plan's count of changes is what the run enqueues and what succeeds."""
        # Given sessions in every status, some with crm, some migrated, some without
        changed = seed_mix(emulator)
        workers.start()

        # When the migration is planned and then run
        plan = plan_migration(producer.stripe(), crm(), now=time.time())
        batch = run_migration(producer, crm(), enqueue_chunk)
        batch = wait_done(producer, batch.id, timeout=60)

        # Then the counts agree and every changed session has crm_id and no crm
        sessions = [producer.stripe().retrieve(sid) for sid in changed]
        assert (111, 105, 105) == (plan.counts.listed, plan.counts.matched, plan.counts.changed)
        assert (105, 105, "migration") == (batch.total, batch.counts[Outcome.SUCCEEDED], batch.kind)
        assert [{"crm_id": "c-1", "tier": "gold"}] * 105 == [s.metadata for s in sessions]

    def test_second_run_enqueues_nothing(
        self, emulator: Any, workers: Workers, producer: Deps
    ) -> None:
        """Right after a run, a second run finds nothing to change and sends nothing."""
        seed_mix(emulator)
        workers.start()
        first = run_migration(producer, crm(), enqueue_chunk)
        wait_done(producer, first.id, timeout=60)
        applied = emulator.stats()["applied_total"]

        second = run_migration(producer, crm(), enqueue_chunk)
        time.sleep(0.5)  # give a stray message the chance to be (wrongly) applied

        assert (0, "done", applied) == (
            second.total,
            producer.ledger.get_batch(second.id).state.value,
            emulator.stats()["applied_total"],
        )


class TestBeat:
    def test_two_beats_give_one_run_per_tick(
        self,
        emulator: Any,
        workers: Workers,
        producer: Deps,
        env: dict[str, str],
        tmp_path: Path,
    ) -> None:
        """Two beat processes on a 2 s schedule produce exactly one run per tick."""
        # Given a worker and two beat processes started by mistake on the same schedule
        changed = seed_mix(emulator)
        spec = tmp_path / "migrations.toml"
        spec.write_text(CRM.format(schedule="2s"), encoding="utf-8")
        short = {"VSBATCH_MIGRATION_MIN_INTERVAL": "1"}  # 2 s is below the 60 s default
        workers.start(VSBATCH_MIGRATIONS_FILE=str(spec), **short)  # ticks name it; workers read it
        logs = [tmp_path / f"beat{i}.log" for i in range(2)]
        beats = []
        for log in logs:
            with log.open("wb") as out:
                beats.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "vsbatch", "beat", "--file", str(spec)],
                        env={**env, **short},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )

        # When they run for a few ticks after the first run
        try:
            deadline = time.monotonic() + 40
            while not migration_batches(producer) and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(7)
        finally:
            for beat in beats:
                beat.send_signal(signal.SIGTERM)
            for beat in beats:
                beat.wait(timeout=15)
        time.sleep(1.5)  # the last tick messages reach the worker

        # Then each tick ran once (on the 2 s grid), and both beats sent checks
        batches = migration_batches(producer)
        ticks = sorted(tick_of(b.name) for b in batches)
        gaps = {b - a for a, b in itertools.pairwise(ticks)}
        claims = [producer.redis.get(k) for k in producer.redis.keys("vsbatch:migration:crm:*")]
        ran = [c for c in claims if c and c.startswith(b"b_")]
        assert len(ticks) == len(set(ticks)) == len(ran)
        assert len(ticks) >= 3
        assert all(gap % 2 == 0 for gap in gaps)
        # A tick that finds the previous run still open is skipped: no session twice.
        assert len(changed) == sum(b.total for b in batches)
        assert [True, True] == [b"Sending due task" in log.read_bytes() for log in logs]
