"""Migration selectors: which sessions a migration looks at.

This module owns :class:`Selector` (its list queries, one per status, and the match of one
session), :class:`TimeBound` (a creation bound, absolute or relative to the run), the statuses
a selector may name and the parser of a ``[migration.select]`` table (:func:`parse_selector`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final

from vsbatch.migrations.fields import (
    UNITS,
    SpecError,
    check_keys,
    check_known,
    parse_duration,
    strings,
)
from vsbatch.model.update_rules import is_account_id

__all__ = ["STATUSES", "Selector", "TimeBound", "parse_selector"]

STATUSES: Final = ("requires_input", "processing", "verified", "canceled")
_SELECT_KEYS: Final = (
    "status",
    "created_after",
    "created_before",
    "account",
    "metadata_present",
    "metadata_absent",
    "metadata_equals",
)


@dataclass(frozen=True)
class TimeBound:
    """A creation-time bound: an absolute epoch second, or a duration before the run."""

    at: int | None = None
    ago: int | None = None

    def resolve(self, now: float) -> int:
        """The bound in epoch seconds for a run at ``now``."""
        return self.at if self.at is not None else int(now) - (self.ago or 0)

    def describe(self) -> str:
        """``"7d ago"`` (largest whole unit) or ``"2026-01-02T03:04:05Z"``, for listings."""
        if self.at is not None:
            return datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        seconds = self.ago or 0
        unit = next(u for u in "dhms" if seconds % UNITS[u] == 0)
        return f"{seconds // UNITS[unit]}{unit} ago"


@dataclass(frozen=True)
class Selector:
    """Which sessions a migration touches."""

    statuses: tuple[str, ...] = ("requires_input",)
    created_after: TimeBound | None = None
    created_before: TimeBound | None = None
    account: str | None = None
    metadata_present: tuple[str, ...] = ()
    metadata_absent: tuple[str, ...] = ()
    metadata_equals: tuple[tuple[str, str], ...] = ()

    def list_queries(self, now: float) -> list[dict[str, Any]]:
        """Keyword arguments for ``StripeClient.list``, one call per status."""
        created: dict[str, int] = {}
        if self.created_after is not None:
            created["gt"] = self.created_after.resolve(now)
        if self.created_before is not None:
            created["lt"] = self.created_before.resolve(now)
        return [
            {"status": status, "created": created or None, "stripe_account": self.account}
            for status in self.statuses
        ]

    def matches(self, session: Mapping[str, Any], now: float) -> bool:
        """True when the session (a plain dict) is one the migration should look at.

        Redacted sessions never match: they can never be updated. Nor do sessions whose
        redaction is still ``processing`` (Stripe's state for days after a redact call).
        """
        if session.get("status") not in self.statuses:
            return False
        if session.get("redaction"):
            return False
        created = int(session.get("created") or 0)
        if self.created_after is not None and not created > self.created_after.resolve(now):
            return False
        if self.created_before is not None and not created < self.created_before.resolve(now):
            return False
        metadata = session.get("metadata") or {}
        if any(key not in metadata for key in self.metadata_present):
            return False
        if any(key in metadata for key in self.metadata_absent):
            return False
        return all(metadata.get(key) == value for key, value in self.metadata_equals)


def parse_selector(table: Mapping[str, Any]) -> Selector:
    """The selector of a ``[migration.select]`` table; SpecError at its first bad field."""
    check_known(table, _SELECT_KEYS, "select.")
    statuses = strings(table.get("status", "requires_input"), "select.status")
    for status in statuses:
        if status not in STATUSES:
            raise SpecError("select.status", f"{status!r} is not one of {', '.join(STATUSES)}")
    account = table.get("account")
    if account is not None and not is_account_id(account):
        raise SpecError("select.account", "account must look like acct_123")
    present = strings(table.get("metadata_present", []), "select.metadata_present")
    absent = strings(table.get("metadata_absent", []), "select.metadata_absent")
    check_keys(present, "select.metadata_present")
    check_keys(absent, "select.metadata_absent")
    equals = table.get("metadata_equals", {})
    if not isinstance(equals, dict) or not all(isinstance(v, str) for v in equals.values()):
        raise SpecError("select.metadata_equals", "metadata_equals must be a table of strings")
    return Selector(
        statuses=statuses,
        created_after=_bound(table.get("created_after"), "select.created_after"),
        created_before=_bound(table.get("created_before"), "select.created_before"),
        account=account,
        metadata_present=present,
        metadata_absent=absent,
        metadata_equals=tuple(sorted(equals.items())),
    )


def _bound(value: Any, field: str) -> TimeBound | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise SpecError(field, "must be a date, a date-time, epoch seconds or a duration")
    if isinstance(value, int):
        return TimeBound(at=value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return TimeBound(at=int(aware.timestamp()))
    if isinstance(value, date):
        return TimeBound(at=int(datetime.combine(value, time(), UTC).timestamp()))
    if isinstance(value, str):
        seconds = parse_duration(value)
        if seconds is not None:
            return TimeBound(ago=seconds)
    raise SpecError(
        field, "must be a date, a date-time (UTC if no offset), epoch seconds or a duration '7d'"
    )
