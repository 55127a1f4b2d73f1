"""Migrations: declarative metadata/option changes read from TOML, and their pure transform.

This module owns the migrations file format (see ``docs/migrations.md``): parsing and checking
it (:func:`parse_migrations`, :func:`load_migrations`, errors as
:class:`~vsbatch.errors.MigrationSpecError` with line and field), schedules (cron or interval,
UTC) and their ticks, selectors (which sessions a migration touches) and actions (what it
changes), and :meth:`Migration.desired_update`, which turns one session into the
:class:`~vsbatch.model.update.SessionUpdate` that brings it to the migration's desired state, or
None when nothing would change. Nothing here touches Redis or the network; listing and batch
creation live in :mod:`vsbatch.migrations.run`.
"""

from __future__ import annotations

import hashlib
import math
import re
import time as _time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Final

from croniter import CroniterBadDateError, croniter

from vsbatch.errors import InvalidUpdate, MigrationSpecError
from vsbatch.model.update import SessionUpdate, is_account_id, parse_update

__all__ = [
    "STATUSES",
    "Action",
    "Migration",
    "Schedule",
    "Selector",
    "TimeBound",
    "load_migrations",
    "parse_migrations",
    "parse_schedule",
]

STATUSES: Final = ("requires_input", "processing", "verified", "canceled")
# A cron tick is run when a check falls this soon after it; a beat that was down at the
# scheduled time does not catch up later than this.
CRON_GRACE: Final = 300
# How often beat checks a cron migration (seconds).
CRON_CHECK: Final = 15.0
# Interval bounds (seconds): a shorter interval would list every session of the account more
# than once a minute; a longer one is a typo (use a cron for yearly runs).
MIN_INTERVAL: Final = 60
MAX_INTERVAL: Final = 366 * 86400
# A cron must fire within this many years of now (29 February does; 31 February never does).
CRON_HORIZON_YEARS: Final = 5

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DURATION = re.compile(r"\s*(\d+)\s*([smhd])\s*")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MIGRATION_KEYS: Final = ("name", "description", "schedule", "select", "action")
_SELECT_KEYS: Final = (
    "status",
    "created_after",
    "created_before",
    "account",
    "metadata_present",
    "metadata_absent",
    "metadata_equals",
)
_ACTION_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "set": ("values",),
    "copy": ("from", "to"),
    "rename": ("from", "to"),
    "unset": ("keys",),
    "document": (
        "allowed_types",
        "require_id_number",
        "require_live_capture",
        "require_matching_selfie",
    ),
    "type": ("value",),
}


class _SpecError(Exception):
    """A problem at a dotted field of one migration (turned into MigrationSpecError)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_duration(text: str) -> int | None:
    """Seconds in ``"90s"``, ``"15m"``, ``"1h"`` or ``"7d"``; None when ``text`` is not one."""
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class Schedule:
    """When a migration runs: every ``interval`` seconds (epoch-aligned) or on a cron, in UTC."""

    text: str
    interval: int | None = None  # None: ``text`` is a 5-field cron expression

    def tick(self, now: float) -> int:
        """The latest scheduled time at or before ``now`` (epoch seconds)."""
        if self.interval is not None:
            return int(now // self.interval * self.interval)
        # croniter's get_prev is strict; starting a second later counts a tick at ``now``.
        return int(croniter(self.text, math.floor(now) + 1).get_prev(float))

    def due_tick(self, now: float) -> int | None:
        """The tick a check at ``now`` should run, or None (a cron tick older than the grace)."""
        tick = self.tick(now)
        if self.interval is None and now - tick > CRON_GRACE:
            return None
        return tick

    @property
    def check_period(self) -> float:
        """How often beat should check this schedule (seconds): twice per interval at least."""
        if self.interval is None:
            return CRON_CHECK
        return min(30.0, max(0.5, self.interval / 2))

    @property
    def claim_ttl(self) -> int:
        """How long the claim of one tick is kept (seconds): well past the tick's window."""
        if self.interval is None:
            return 4 * CRON_GRACE
        return max(600, 2 * self.interval)


def parse_schedule(
    text: str, *, min_interval: int = MIN_INTERVAL, now: float | None = None
) -> Schedule:
    """A schedule from ``"15m"``-style intervals or 5-field cron expressions (UTC).

    Args:
        text: The schedule as written.
        min_interval: The shortest interval accepted (seconds).
        now: Where to look for a cron's next fire time (default: the wall clock).

    Raises:
        ValueError: neither form, an interval out of bounds, or a cron that never fires.
    """
    seconds = parse_duration(text)
    if seconds is not None:
        if seconds < min_interval:
            raise ValueError(f"interval {text.strip()!r} is too short: at least {min_interval}s")
        if seconds > MAX_INTERVAL:
            raise ValueError(f"interval {text.strip()!r} is too long: at most 366d")
        return Schedule(text.strip(), seconds)
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValueError(
            f"{text!r} is neither an interval (15m, 1h, 1d) nor a 5-field cron expression"
        )
    start = _time.time() if now is None else now
    try:
        croniter(text, start, max_years_between_matches=CRON_HORIZON_YEARS).get_next(float)
    except CroniterBadDateError:
        raise ValueError(
            f"cron {text!r} never fires (no date matches within {CRON_HORIZON_YEARS} years)"
        ) from None
    return Schedule(" ".join(text.split()))


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
        unit = next(u for u in "dhms" if seconds % _UNITS[u] == 0)
        return f"{seconds // _UNITS[unit]}{unit} ago"


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

        Redacted sessions never match: they can never be updated.
        """
        if session.get("status") not in self.statuses:
            return False
        if (session.get("redaction") or {}).get("status") == "redacted":
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


@dataclass(frozen=True)
class Action:
    """One step of a migration: ``op`` (set, copy, rename, unset, document, type) and its args.

    ``args`` holds: set ``{"values": {k: v}}``; copy/rename ``{"from": k, "to": k2}``; unset
    ``{"keys": [k, ...]}``; document the ``options.document`` fields; type ``{"value": t}``.
    """

    op: str
    args: Mapping[str, Any]

    def apply(self, metadata: dict[str, str], params: dict[str, Any]) -> None:
        """Apply the step to the desired ``metadata`` and the non-metadata ``params``."""
        args = self.args
        if self.op == "set":
            metadata.update(args["values"])
        elif self.op in ("copy", "rename"):
            if args["from"] in metadata:
                value = metadata[args["from"]]
                if self.op == "rename":
                    del metadata[args["from"]]
                metadata[args["to"]] = value
        elif self.op == "unset":
            for key in args["keys"]:
                metadata.pop(key, None)
        elif self.op == "document":
            options = params.setdefault("options", {"document": {}})
            options["document"].update(args)
        else:
            params["type"] = args["value"]

    def describe(self) -> str:
        """A one-line summary, for ``vsbatch migrate list``."""
        args = self.args
        if self.op == "set":
            return "set " + ", ".join(f"{k}={v!r}" for k, v in args["values"].items())
        if self.op in ("copy", "rename"):
            return f"{self.op} {args['from']} -> {args['to']}"
        if self.op == "unset":
            return "unset " + ", ".join(args["keys"])
        if self.op == "document":
            return "document " + ", ".join(f"{k}={v}" for k, v in args.items())
        return f"type {args['value']}"


@dataclass(frozen=True)
class Migration:
    """One declared migration: a name, an optional schedule, a selector and its actions."""

    name: str
    selector: Selector
    actions: tuple[Action, ...]
    schedule: Schedule | None = None
    description: str = ""
    line: int | None = None  # where its ``[[migration]]`` starts in the file
    digest: str = field(default="", compare=False)

    def desired_update(self, session: Mapping[str, Any]) -> SessionUpdate | None:
        """The update that brings ``session`` to the migration's desired state, or None.

        Metadata actions run in order on a copy of the session's metadata; the update sets the
        keys whose value changed and unsets (``""``) the keys that disappeared. Document
        options and type are part of the update unless the session already has them.

        Args:
            session: An ``identity.verification_session`` object as a plain dict.
        """
        before = dict(session.get("metadata") or {})
        after = dict(before)
        params: dict[str, Any] = {}
        for action in self.actions:
            action.apply(after, params)
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        changed.update({k: "" for k in before if k not in after})
        if changed:
            params["metadata"] = dict(sorted(changed.items()))
        if not params:
            return None
        update = parse_update(params)
        return None if update.is_satisfied_by(session) else update


# -- parsing --------------------------------------------------------------------------------


def load_migrations(path: Path | str, *, min_interval: int = MIN_INTERVAL) -> dict[str, Migration]:
    """Read and check a migrations file (``min_interval`` as in :func:`parse_migrations`).

    Raises:
        MigrationSpecError: the file is unreadable, not TOML, or breaks a rule.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationSpecError(f"cannot read migrations file: {exc}", path=str(path)) from None
    return parse_migrations(text, path=str(path), min_interval=min_interval)


def parse_migrations(
    text: str, *, path: str | None = None, min_interval: int = MIN_INTERVAL
) -> dict[str, Migration]:
    """Parse and check the TOML text of a migrations file.

    Args:
        text: The file's text: ``[[migration]]`` tables (see ``docs/migrations.md``).
        path: The file's name, for messages.
        min_interval: The shortest schedule interval accepted (seconds).

    Returns:
        Migrations by name, in file order.

    Raises:
        MigrationSpecError: the first problem, with its line and dotted field when known.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise MigrationSpecError(
            f"not valid TOML: {exc}", path=path, line=int(match.group(1)) if match else None
        ) from None
    locator = _Locator(text)
    for key in data:
        if key != "migration":
            raise MigrationSpecError(
                f"unknown top-level key {key!r}: declare migrations as [[migration]] tables",
                path=path,
                line=locator.top_level(key),
                field=key,
            )
    tables = data.get("migration", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise MigrationSpecError(
            "migration must be an array of tables ([[migration]])", path=path, field="migration"
        )
    found: dict[str, Migration] = {}
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    for index, table in enumerate(tables):
        try:
            migration = _migration(
                table, line=locator.block_start(index), digest=digest, min_interval=min_interval
            )
        except _SpecError as exc:
            raise MigrationSpecError(
                exc.message,
                path=path,
                line=locator.line_of(index, exc.field),
                field=f"migration[{index}].{exc.field}",
            ) from None
        if migration.name in found:
            raise MigrationSpecError(
                f"duplicate migration name {migration.name!r}",
                path=path,
                line=locator.line_of(index, "name"),
                field=f"migration[{index}].name",
            )
        found[migration.name] = migration
    return found


def _migration(
    table: Mapping[str, Any], *, line: int | None, digest: str, min_interval: int
) -> Migration:
    _known(table, _MIGRATION_KEYS, "")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _SpecError("name", "name must be 1-64 letters, digits, '.', '_' or '-'")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise _SpecError("description", "description must be a string")
    schedule = None
    if "schedule" in table:
        if not isinstance(table["schedule"], str):
            raise _SpecError("schedule", "schedule must be a string such as '15m' or '0 3 * * *'")
        try:
            schedule = parse_schedule(table["schedule"], min_interval=min_interval)
        except ValueError as exc:
            raise _SpecError("schedule", f"migration {name!r}: {exc}") from None
    select = table.get("select", {})
    if not isinstance(select, dict):
        raise _SpecError("select", "select must be a table")
    actions = table.get("action")
    if not isinstance(actions, list) or not actions:
        raise _SpecError("action", "a migration needs at least one [[migration.action]]")
    return Migration(
        name=name,
        selector=_selector(select),
        actions=tuple(_action(i, a) for i, a in enumerate(actions)),
        schedule=schedule,
        description=description,
        line=line,
        digest=digest,
    )


def _known(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            choices = ", ".join(allowed)
            raise _SpecError(f"{where}{key}", f"unknown field {key!r}; expected one of {choices}")


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _SpecError(field, "must be a string or a list of non-empty strings")
    return tuple(value)


def _check_keys(keys: tuple[str, ...], field: str) -> None:
    for key in keys:
        _metadata_rules({key: "x"}, field)


def _metadata_rules(values: Mapping[str, Any], field: str) -> None:
    try:
        parse_update({"metadata": dict(values)})
    except InvalidUpdate as exc:
        raise _SpecError(field, exc.reason) from None


def _selector(table: Mapping[str, Any]) -> Selector:
    _known(table, _SELECT_KEYS, "select.")
    statuses = _strings(table.get("status", "requires_input"), "select.status")
    for status in statuses:
        if status not in STATUSES:
            raise _SpecError("select.status", f"{status!r} is not one of {', '.join(STATUSES)}")
    account = table.get("account")
    if account is not None and not is_account_id(account):
        raise _SpecError("select.account", "account must look like acct_123")
    present = _strings(table.get("metadata_present", []), "select.metadata_present")
    absent = _strings(table.get("metadata_absent", []), "select.metadata_absent")
    _check_keys(present, "select.metadata_present")
    _check_keys(absent, "select.metadata_absent")
    equals = table.get("metadata_equals", {})
    if not isinstance(equals, dict) or not all(isinstance(v, str) for v in equals.values()):
        raise _SpecError("select.metadata_equals", "metadata_equals must be a table of strings")
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
        raise _SpecError(field, "must be a date, a date-time, epoch seconds or a duration")
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
    raise _SpecError(
        field, "must be a date, a date-time (UTC if no offset), epoch seconds or a duration '7d'"
    )


def _action(index: int, table: Any) -> Action:
    where = f"action[{index}]"
    if not isinstance(table, dict):
        raise _SpecError(where, "an action must be a table")
    op = table.get("op")
    if op not in _ACTION_FIELDS:
        raise _SpecError(f"{where}.op", f"op must be one of {', '.join(_ACTION_FIELDS)}")
    allowed = _ACTION_FIELDS[op]
    _known(table, ("op", *allowed), f"{where}.")
    args = {k: v for k, v in table.items() if k != "op"}
    if op == "document":
        if not args:
            raise _SpecError(where, "a document action sets at least one document option")
        try:
            parse_update({"options": {"document": args}})
        except InvalidUpdate as exc:
            name = (exc.field or "").rsplit(".", 1)[-1]
            raise _SpecError(f"{where}.{name}", exc.reason) from None
        return Action(op, args)
    for name in allowed:
        if name not in args:
            raise _SpecError(f"{where}.{name}", f"a {op} action needs {name!r}")
    if op == "set":
        values = args["values"]
        if not isinstance(values, dict) or not values:
            raise _SpecError(f"{where}.values", "values must be a non-empty table of strings")
        if any(not isinstance(v, str) or not v for v in values.values()):
            raise _SpecError(f"{where}.values", "values must be non-empty strings (use unset)")
        _metadata_rules(values, f"{where}.values")
    elif op in ("copy", "rename"):
        keys = (_strings(args["from"], f"{where}.from"), _strings(args["to"], f"{where}.to"))
        for name, key in zip(("from", "to"), keys, strict=True):
            if len(key) != 1:
                raise _SpecError(f"{where}.{name}", f"{name} must be one metadata key")
            _check_keys(key, f"{where}.{name}")
        args = {"from": keys[0][0], "to": keys[1][0]}
    elif op == "unset":
        args = {"keys": list(_strings(args["keys"], f"{where}.keys"))}
        _check_keys(tuple(args["keys"]), f"{where}.keys")
    else:
        try:
            parse_update({"type": args["value"]})
        except InvalidUpdate as exc:
            raise _SpecError(f"{where}.value", exc.reason) from None
    return Action(op, args)


class _Locator:
    """Finds the line of a migration's field in the TOML text (best effort, 1-based)."""

    _HEADER = re.compile(r"\s*\[\[\s*migration\s*\]\]")
    _ACTION = re.compile(r"\s*\[\[\s*migration\.action\s*\]\]")
    _SELECT = re.compile(r"\s*\[\s*migration\.select\s*\]")
    _TABLE = re.compile(r"\s*\[")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.starts = [i for i, line in enumerate(self.lines) if self._HEADER.match(line)]

    def top_level(self, key: str) -> int | None:
        """The line of a top-level key or table header."""
        pattern = re.compile(rf"\s*(\[+\s*)?\"?{re.escape(key)}\b")
        end = self.starts[0] if self.starts else len(self.lines)
        for i in range(end):
            if pattern.match(self.lines[i]):
                return i + 1
        for i, line in enumerate(self.lines):
            if re.match(rf"\s*\[+\s*{re.escape(key)}\b", line):
                return i + 1
        return None

    def block_start(self, index: int) -> int | None:
        """The line of the ``index``-th ``[[migration]]`` header."""
        return self.starts[index] + 1 if index < len(self.starts) else None

    def line_of(self, index: int, field: str) -> int | None:
        """The line of ``field`` (dotted, e.g. ``select.status``, ``action[1].from``)."""
        if index >= len(self.starts):
            return None
        lo = self.starts[index]
        hi = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.lines)
        head, _, rest = field.partition(".")
        match = re.fullmatch(r"action\[(\d+)\]", head)
        if match:
            headers = [i for i in range(lo, hi) if self._ACTION.match(self.lines[i])]
            n = int(match.group(1))
            if n < len(headers):
                return self._key_line(headers[n] + 1, hi, rest) or headers[n] + 1
            return self._key_line(lo + 1, hi, "action") or lo + 1
        if head == "select" and rest:
            for i in range(lo, hi):
                if self._SELECT.match(self.lines[i]):
                    return self._key_line(i + 1, hi, rest) or i + 1
            return self._key_line(lo + 1, hi, "select") or lo + 1
        return self._key_line(lo + 1, hi, head) or lo + 1

    def _key_line(self, lo: int, hi: int, key: str) -> int | None:
        if not key:
            return None
        pattern = re.compile(rf"\s*\"?{re.escape(key)}\"?\s*=")
        for i in range(lo, hi):
            if self._TABLE.match(self.lines[i]):
                return None
            if pattern.match(self.lines[i]):
                return i + 1
        return None
