"""Migrations: declarative metadata/option changes read from TOML, and their pure transform.

This module owns the migrations file format (see ``docs/migrations.md``) as a whole: reading
and checking it (:func:`parse_migrations`, :func:`load_migrations`, errors as
:class:`~vsbatch.errors.MigrationSpecError` with line and field), and :class:`Migration`, whose
:meth:`Migration.desired_update` turns one session into the
:class:`~vsbatch.model.update.SessionUpdate` that brings it to the migration's desired state, or
None when nothing would change. Its parts live beside it: schedules in
:mod:`vsbatch.migrations.schedule`, selectors in :mod:`vsbatch.migrations.selector`, actions in
:mod:`vsbatch.migrations.action`, shared field checks in :mod:`vsbatch.migrations.fields` and
the line finder in :mod:`vsbatch.migrations.locator`. Nothing here touches Redis or the
network; planning lives in :mod:`vsbatch.migrations.plan` and runs in
:mod:`vsbatch.migrations.run`.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from vsbatch.errors import MigrationSpecError
from vsbatch.migrations.action import Action, parse_action
from vsbatch.migrations.fields import SpecError, check_known
from vsbatch.migrations.locator import Locator
from vsbatch.migrations.schedule import MIN_INTERVAL, Schedule, parse_schedule
from vsbatch.migrations.selector import Selector, parse_selector
from vsbatch.model.update import SessionUpdate, parse_update

__all__ = ["Migration", "load_migrations", "parse_migrations"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MIGRATION_KEYS: Final = ("name", "description", "schedule", "select", "action")


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
    locator = Locator(text)
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
        except SpecError as exc:
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
    check_known(table, _MIGRATION_KEYS, "")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SpecError("name", "name must be 1-64 letters, digits, '.', '_' or '-'")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise SpecError("description", "description must be a string")
    schedule = None
    if "schedule" in table:
        if not isinstance(table["schedule"], str):
            raise SpecError("schedule", "schedule must be a string such as '15m' or '0 3 * * *'")
        try:
            schedule = parse_schedule(table["schedule"], min_interval=min_interval)
        except ValueError as exc:
            raise SpecError("schedule", f"migration {name!r}: {exc}") from None
    select = table.get("select", {})
    if not isinstance(select, dict):
        raise SpecError("select", "select must be a table")
    actions = table.get("action")
    if not isinstance(actions, list) or not actions:
        raise SpecError("action", "a migration needs at least one [[migration.action]]")
    return Migration(
        name=name,
        selector=parse_selector(select),
        actions=tuple(parse_action(i, a) for i, a in enumerate(actions)),
        schedule=schedule,
        description=description,
        line=line,
        digest=digest,
    )
