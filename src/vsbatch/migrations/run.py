"""Running a migration: write the sessions it would change as a batch and enqueue it.

This module owns the writing side of a migration (the listing is
:func:`vsbatch.migrations.plan.scan`): :func:`run_migration` writes the changes as a ledger
batch of kind ``migration`` (rows 1..n, one per changed session) and enqueues it, so
``status``, ``report``, ``failures`` and ``retry`` work on it as on any batch; :func:`run_tick`
is what beat's tick task calls: it takes the migration the message names from the worker's own
migrations file and hands it to :func:`run_scheduled`, which claims the (migration, tick) pair
in Redis with ``SET NX`` so that exactly one run happens per tick, however many beat processes
send the tick. :func:`beat_schedule` builds Celery beat's schedule from a migrations file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from vsbatch.bootstrap import Deps
from vsbatch.errors import MigrationSpecError, NotFoundError, VsbatchError
from vsbatch.intake.stage import Enqueue, open_and_enqueue
from vsbatch.migrations.plan import ScanCounts, scan
from vsbatch.migrations.spec import Migration, load_migrations
from vsbatch.model.row import BatchInfo, BatchState, NewRow
from vsbatch.worker.messages import InvalidArguments
from vsbatch.worker.row_options import RowOptions

__all__ = [
    "TICK_TASK",
    "beat_schedule",
    "run_migration",
    "run_scheduled",
    "run_tick",
]

TICK_TASK = "vsbatch.migration_tick"

log = logging.getLogger(__name__)


def run_migration(
    deps: Deps,
    migration: Migration,
    enqueue: Enqueue,
    *,
    now: float | None = None,
    tick: int | None = None,
) -> BatchInfo:
    """Write the sessions that would change as a ``migration`` batch and enqueue it.

    A run that finds nothing to change still leaves an (empty, DONE) batch: the record that
    the migration ran. On a listing error the staged batch is discarded and the error raised.

    Args:
        deps: The process's dependencies.
        migration: The migration to run.
        enqueue: How chunks reach the workers.
        now: The run's time (default: the ledger's clock).
        tick: The scheduled time this run is for, named in the batch (beat runs).

    Returns:
        The opened batch.
    """
    ledger = deps.ledger
    now = ledger.now() if now is None else now
    label = "" if tick is None else f" @ {_iso(tick)}"
    batch = ledger.create_batch(
        name=f"migration {migration.name}{label}",
        kind="migration",
        source=migration.name,
        digest=migration.digest or None,
        account=migration.selector.account,
    )
    counts = ScanCounts()

    def rows() -> Iterator[NewRow]:
        changes = scan(deps.stripe(), migration, now=now, counts=counts, limiter=deps.limiter)
        for row, change in enumerate(changes, start=1):
            yield NewRow(
                row=row,
                session_id=change.session_id,
                account=change.account,
                params=change.update.to_params(),
            )

    try:
        ledger.add_rows(batch.id, rows())
    except VsbatchError:
        ledger.discard_batch(batch.id)
        raise
    return open_and_enqueue(deps, batch.id, enqueue, RowOptions())


def run_scheduled(
    deps: Deps, migration: Migration, enqueue: Enqueue, *, now: float
) -> BatchInfo | None:
    """Run the migration for the tick due at ``now``, unless some process already did.

    The claim is ``SET NX`` on ``<prefix>:migration:<name>:<tick>``, taken before listing:
    two beat processes (or a redelivered tick message) give one run per tick. A run that
    fails after the claim is not retried for that tick; the next tick runs again. A tick that
    comes while the previous run's batch is still open is skipped, so that no session is
    enqueued twice.

    Returns:
        The run's batch, or None (no schedule, no tick due, or the tick was already claimed).
    """
    schedule = migration.schedule
    if schedule is None:
        return None
    tick = schedule.due_tick(now)
    if tick is None:
        return None
    key = deps.ledger.keys.migration_tick(migration.name, tick)
    if not deps.redis.set(key, "running", nx=True, ex=schedule.claim_ttl):
        return None
    if _previous_run_in_flight(deps, migration.name):
        # Listing now would enqueue again the sessions the previous run has not reached yet.
        deps.redis.set(key, "skipped: previous run still in flight", ex=schedule.claim_ttl)
        return None
    batch = run_migration(deps, migration, enqueue, now=now, tick=tick)
    deps.redis.set(key, batch.id, ex=schedule.claim_ttl)
    deps.redis.set(
        deps.ledger.keys.migration_last(migration.name),
        batch.id,
        ex=int(deps.settings.ledger_retention_days * 86400),
    )
    return batch


def run_tick(deps: Deps, name: str, enqueue: Enqueue) -> BatchInfo | None:
    """Run the scheduled migration ``name`` of this worker's own migrations file, if due.

    A tick message names a migration and nothing else: its selector, actions and schedule
    come from ``Settings.migrations_file`` here, so a forged tick can at most run, on its
    schedule, a migration the operator declared. An unreadable or invalid file is logged in
    one line and nothing runs.

    Raises:
        InvalidArguments: the file has no scheduled migration of that name.
    """
    path = deps.settings.migrations_file
    try:
        migrations = load_migrations(path, min_interval=deps.settings.migration_min_interval)
        migration = migrations.get(name)
    except MigrationSpecError as exc:
        log.error("migration tick %r not run: %s", name, exc)
        return None
    if migration is None or migration.schedule is None:
        raise InvalidArguments(f"no scheduled migration {name!r} in {path}")
    return run_scheduled(deps, migration, enqueue, now=deps.ledger.now())


def _previous_run_in_flight(deps: Deps, name: str) -> bool:
    last = deps.redis.get(deps.ledger.keys.migration_last(name))
    if last is None:
        return False
    try:
        previous = deps.ledger.get_batch(last.decode() if isinstance(last, bytes) else str(last))
    except NotFoundError:
        return False
    return previous.state is BatchState.OPEN


def beat_schedule(migrations: dict[str, Migration]) -> dict[str, dict[str, Any]]:
    """Celery beat's ``beat_schedule`` for the scheduled migrations of one file.

    Each scheduled migration is checked every ``Schedule.check_period`` seconds; the tick
    message carries only the migration's name: workers run it from their own migrations file
    (``VSBATCH_MIGRATIONS_FILE``). Checks expire after two periods, so a backlog of stale
    checks never piles up while workers are away.
    """
    schedule: dict[str, dict[str, Any]] = {}
    for name, migration in migrations.items():
        if migration.schedule is None:
            continue
        period = migration.schedule.check_period
        schedule[f"migration:{name}"] = {
            "task": TICK_TASK,
            "schedule": period,
            "args": (name,),
            "options": {"expires": 2 * period},
        }
    return schedule


def _iso(tick: int) -> str:
    return datetime.fromtimestamp(tick, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
