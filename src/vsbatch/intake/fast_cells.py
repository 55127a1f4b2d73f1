"""The reader's fast path: a well-formed row's canonical params straight from its cells.

:func:`vsbatch.intake.csv_cells.update_from_cells` builds a pydantic ``SessionUpdate`` per row
(tens of microseconds); a million-row file spends most of its staging time there. A
:class:`CellPlan` is built once from the header and maps each update column to a small check;
for a row whose every cell passes them, :meth:`CellPlan.params` returns exactly
``update_from_cells(...).to_params()`` (keys sorted at every level). Anything unusual (an
unset, an escaped or quoted cell, a value the model would refuse, a row that updates nothing)
returns None and the row takes the checked path, which also names the fault.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vsbatch.intake.csv_cells import cell_value
from vsbatch.intake.csv_format import BOOLEAN_COLUMNS, BOOLEANS, DOC, LIST_SEPARATOR
from vsbatch.model.update_rules import (
    DOCUMENT_TYPES,
    MAX_EMAIL_LENGTH,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_LENGTH,
    VERIFICATION_TYPES,
    holds_secret_key,
)

# Column kinds, in the canonical order of their keys: sorting the columns by (kind, key) puts
# each part's keys in sorted order (allowed_types sorts before the require_* flags).
_METADATA, _ALLOWED, _FLAG, _DETAIL, _TYPE, _UNSET_ONLY = range(6)
_DETAILS = {"provided_details.email": "email", "provided_details.phone": "phone"}


class CellPlan:
    """What each update column of a header asks of its cells (columns left out: id,
    stripe_account, ignored ones).

    Args:
        names: The header's column names, stripped, in file order.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self._columns: list[tuple[int, int, str]] = []
        for index, name in enumerate(names):
            kind = _kind(name)
            if kind is not None:
                self._columns.append((index, kind, _field(name, kind)))
        self._columns.sort(key=lambda column: (column[1], column[2]))  # canonical key order

    def params(self, cells: Sequence[str]) -> dict[str, Any] | None:
        """The row's canonical params, or None when the row needs the checked path.

        ``cells`` are the row's cells, as long as the header.
        """
        parts: dict[str, dict[str, Any]] = {}
        for index, kind, field in self._columns:
            cell = cells[index]
            if not cell:
                continue
            value = cell_value(cell, trim=kind != _METADATA)
            if not value:
                continue
            if "!" in value or not _is_text(value) or holds_secret_key(value):
                return None  # an unset, its escaped text, a key: the checked path reads it
            checked = _CHECKS[kind](field, value)
            if checked is None:
                return None
            parts.setdefault(_PARTS[kind], {})[field] = checked
        return _assemble(parts)


def _assemble(parts: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The params in canonical order (each part's keys are in order already); None if empty."""
    params: dict[str, Any] = {}
    if "metadata" in parts:
        if len(parts["metadata"]) > MAX_METADATA_KEYS:
            return None
        params["metadata"] = parts["metadata"]
    if "document" in parts:
        params["options"] = {"document": parts["document"]}
    if "provided_details" in parts:
        params["provided_details"] = parts["provided_details"]
    if "type" in parts:
        params["type"] = parts["type"]["type"]
    return params or None


def _metadata_value(field: str, value: str) -> str | None:
    return value if len(value) <= MAX_METADATA_VALUE_LENGTH else None


def _flag(field: str, value: str) -> bool | None:
    return BOOLEANS.get(value.lower())


def _detail(field: str, value: str) -> str | None:
    return None if field == "email" and len(value) > MAX_EMAIL_LENGTH else value


def _type(field: str, value: str) -> str | None:
    lowered = value.lower()
    return lowered if lowered in VERIFICATION_TYPES else None


def _unset_only(field: str, value: str) -> None:
    return None


def _allowed_types(field: str, value: str) -> list[str] | None:
    items = [item.strip().lower() for item in value.split(LIST_SEPARATOR)]
    if len(set(items)) != len(items) or not all(item in DOCUMENT_TYPES for item in items):
        return None
    return items


def _is_text(value: str) -> bool:
    """True for valid Unicode (what ``check_text`` asks of metadata and details)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(name: str) -> int | None:
    """The column's kind, None for one that sets nothing (id, account, ignored columns).

    ``metadata`` and ``options.document`` take only ``!unset``: a row with one of them filled
    takes the checked path."""
    if name.startswith("metadata."):
        return _METADATA
    if name in BOOLEAN_COLUMNS:
        return _FLAG
    if name == "type":
        return _TYPE
    if name == f"{DOC}.allowed_types":
        return _ALLOWED
    if name in _DETAILS:
        return _DETAIL
    if name in ("metadata", DOC):
        return _UNSET_ONLY
    return None


def _field(name: str, kind: int) -> str:
    """The key the column sets inside its part of the update."""
    if kind == _METADATA:
        return name[len("metadata.") :]
    if kind == _DETAIL:
        return _DETAILS[name]
    return name.rsplit(".", 1)[-1]


# Each kind's check of a non-empty cell: its value in the update, or None (checked path).
_CHECKS: dict[int, Callable[[str, str], Any]] = {
    _METADATA: _metadata_value,
    _ALLOWED: _allowed_types,
    _FLAG: _flag,
    _DETAIL: _detail,
    _TYPE: _type,
    _UNSET_ONLY: _unset_only,
}
_PARTS = {
    _METADATA: "metadata",
    _ALLOWED: "document",
    _FLAG: "document",
    _DETAIL: "provided_details",
    _TYPE: "type",
    _UNSET_ONLY: "",
}
