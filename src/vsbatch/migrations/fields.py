"""The small pieces every table of a migrations file shares: the spec error and field checks.

This module owns :class:`SpecError` (a problem at a dotted field of one migration, which
:func:`~vsbatch.migrations.spec.parse_migrations` turns into a
:class:`~vsbatch.errors.MigrationSpecError` with its line), durations such as ``"15m"``
(:func:`parse_duration`, used by schedules and creation bounds), and the checks of unknown
fields, lists of strings and metadata keys and values (Stripe's own rules, through
:func:`~vsbatch.model.update.parse_update`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from vsbatch.errors import InvalidUpdate
from vsbatch.model.update import parse_update

__all__ = [
    "UNITS",
    "SpecError",
    "check_keys",
    "check_known",
    "metadata_rules",
    "parse_duration",
    "strings",
]

_DURATION = re.compile(r"\s*(\d+)\s*([smhd])\s*")
UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SpecError(Exception):
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
    return int(match.group(1)) * UNITS[match.group(2)]


def check_known(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """SpecError at ``where<key>`` for the first key of ``table`` not in ``allowed``."""
    for key in table:
        if key not in allowed:
            choices = ", ".join(allowed)
            raise SpecError(f"{where}{key}", f"unknown field {key!r}; expected one of {choices}")


def strings(value: Any, field: str) -> tuple[str, ...]:
    """A string or a list of non-empty strings, as a tuple; SpecError at ``field`` otherwise."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SpecError(field, "must be a string or a list of non-empty strings")
    return tuple(value)


def check_keys(keys: tuple[str, ...], field: str) -> None:
    """SpecError at ``field`` for the first key that Stripe would refuse as a metadata key."""
    for key in keys:
        metadata_rules({key: "x"}, field)


def metadata_rules(values: Mapping[str, Any], field: str) -> None:
    """SpecError at ``field`` when ``values`` breaks Stripe's metadata rules."""
    try:
        parse_update({"metadata": dict(values)})
    except InvalidUpdate as exc:
        raise SpecError(field, exc.reason) from None
