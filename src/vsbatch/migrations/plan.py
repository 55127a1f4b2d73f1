"""Planning a migration: which sessions it would change now, and how, without writing anything.

This module owns the listing side of a migration: :func:`scan` lists every page of every
selected status through ``StripeClient.list`` (paced by the rate limiter when given) and
yields the sessions that would change as :class:`PlannedChange`; :class:`ScanCounts` counts
what it saw; :func:`plan_migration` is the dry run, a :class:`Plan` of the counts and the
first changes. Writing the changes as a batch lives in :mod:`vsbatch.migrations.run`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from vsbatch.errors import RateLimitBusy
from vsbatch.migrations.spec import Migration
from vsbatch.model.update import FieldChange, SessionUpdate
from vsbatch.store.rate_limit import RateLimiter
from vsbatch.stripe.client import StripeClient

__all__ = ["PAGE", "Plan", "PlannedChange", "ScanCounts", "plan_migration", "scan"]

PAGE = 100  # sessions per list page (the most Stripe allows)


@dataclass(frozen=True)
class PlannedChange:
    """One session a migration would change, and how."""

    session_id: str
    account: str | None
    status: str
    update: SessionUpdate
    changes: list[FieldChange]


@dataclass
class ScanCounts:
    """What a scan saw: sessions listed, matching the selector, and that would change."""

    listed: int = 0
    matched: int = 0
    changed: int = 0


@dataclass
class Plan:
    """A dry run: the counts and the first ``shown`` changes."""

    migration: str
    counts: ScanCounts
    changes: list[PlannedChange] = field(default_factory=list)


def scan(
    client: StripeClient,
    migration: Migration,
    *,
    now: float,
    counts: ScanCounts,
    limiter: RateLimiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[PlannedChange]:
    """Yield the sessions the migration would change, listing every page of every status.

    Args:
        client: The Stripe client to list with.
        migration: The migration.
        now: The run's time (epoch seconds) for relative creation bounds.
        counts: Updated as sessions are seen.
        limiter: When given, each page request first takes a slot from it.
        sleep: For waiting on a busy limiter.

    Raises:
        StripeError: a page failed (sessions already yielded stay yielded).
    """
    selector = migration.selector
    for query in selector.list_queries(now):
        account = query["stripe_account"]
        sessions = client.list(limit=PAGE, **query)
        while True:
            if limiter is not None and counts.listed % PAGE == 0:
                _pace(limiter, account, sleep)  # the next item may fetch a page
            session = next(sessions, None)
            if session is None:
                break
            counts.listed += 1
            data = session.model_dump()
            if not selector.matches(data, now):
                continue
            counts.matched += 1
            update = migration.desired_update(data)
            if update is None:
                continue
            counts.changed += 1
            yield PlannedChange(session.id, account, session.status, update, update.changes(data))


def _pace(limiter: RateLimiter, account: str | None, sleep: Callable[[float], None]) -> None:
    while True:
        try:
            limiter.wait(account)
            return
        except RateLimitBusy as busy:
            sleep(busy.retry_after)


def plan_migration(
    client: StripeClient, migration: Migration, *, now: float, shown: int = 20
) -> Plan:
    """Count what a run would do now, keeping the first ``shown`` changes. Writes nothing."""
    plan = Plan(migration.name, ScanCounts())
    for change in scan(client, migration, now=now, counts=plan.counts):
        if len(plan.changes) < shown:
            plan.changes.append(change)
    return plan
