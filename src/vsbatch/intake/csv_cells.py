"""A row's cells and a canonical update, both ways: the reader's mapping from cells to a
``SessionUpdate`` (with the column to blame when a row is refused) and its inverse for the
failures file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vsbatch.errors import InvalidUpdate
from vsbatch.intake.csv_format import (
    ACCOUNT_COLUMN,
    BOOLEAN_COLUMNS,
    BOOLEANS,
    DOC,
    ESCAPED_UNSET,
    ID_COLUMN,
    ID_RE,
    IGNORED_COLUMNS,
    LIST_SEPARATOR,
    MAX_ID_CHARS,
    UNSET,
    UPDATE_COLUMNS,
    escape_unset,
    protected,
)
from vsbatch.model.update import parse_update
from vsbatch.model.update_rules import is_account_id

if TYPE_CHECKING:
    from vsbatch.model.update import SessionUpdate


@dataclass(frozen=True)
class RowError:
    """Why one row is rejected: ``column`` is the CSV column the user sees (None: the row)."""

    column: str | None
    reason: str


class RowProblem(Exception):
    def __init__(self, column: str | None, reason: str) -> None:
        super().__init__(reason)
        self.error = RowError(column, reason)


def cell_value(cell: str, *, trim: bool = True) -> str:
    """The cell's value: trimmed (except metadata) unless protected by a leading ``'``.

    One leading ``'`` before protected text (see :func:`protected`) is removed and the rest
    is kept exactly; a cell of whitespace only is empty.
    """
    value = cell.lstrip() if trim else cell
    if value[:1] == "'" and protected(value[1:]):
        return value[1:]
    value = value.rstrip() if trim else value
    return value if value.strip() else ""


def update_from_cells(session_id: str, account: str | None, raw: dict[str, str]) -> SessionUpdate:
    if not session_id:
        raise RowProblem(ID_COLUMN, "Missing session id.")
    if len(session_id) > MAX_ID_CHARS or not ID_RE.fullmatch(session_id):
        reason = f"Not a VerificationSession id: {session_id!r} (expected vs_ and letters/digits)."
        raise RowProblem(ID_COLUMN, reason)
    if account is not None and not is_account_id(account):
        reason = f"Not a Stripe account id: {account!r} (expected acct_ and letters/digits)."
        raise RowProblem(ACCOUNT_COLUMN, reason)
    data: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    document: dict[str, Any] = {}
    details: dict[str, str] = {}
    unset_metadata = unset_document = False
    for column, cell in raw.items():
        if column in (ID_COLUMN, ACCOUNT_COLUMN) or column in IGNORED_COLUMNS:
            continue
        is_metadata = column.startswith("metadata.")
        value = cell_value(cell, trim=not is_metadata)
        if not value:
            continue
        if value.strip() == UNSET:
            if is_metadata:
                metadata[column[len("metadata.") :]] = ""
            elif column in ("metadata", DOC):
                unset_metadata = unset_metadata or column == "metadata"
                unset_document = unset_document or column == DOC
            else:
                reason = f"{UNSET} is only allowed in metadata and options.document columns."
                raise RowProblem(column, reason)
            continue
        if ESCAPED_UNSET.fullmatch(value.strip()):
            value = value.replace("!!", "!", 1)  # "!!unset" is the literal text "!unset"
        if is_metadata:
            metadata[column[len("metadata.") :]] = value
        elif column in ("metadata", DOC):
            reason = f"This column only takes {UNSET}; set fields in {column}.<name> columns."
            raise RowProblem(column, reason)
        elif column == "type":
            data["type"] = value.lower()
        elif column == f"{DOC}.allowed_types":
            items = [item.strip().lower() for item in value.split(LIST_SEPARATOR)]
            if not all(items):
                reason = f"Empty item in the list (separate items with {LIST_SEPARATOR})."
                raise RowProblem(column, reason)
            document["allowed_types"] = items
        elif column in BOOLEAN_COLUMNS:
            if value.lower() not in BOOLEANS:
                reason = f"Expected true or false (or yes/no, 1/0), got {value!r}."
                raise RowProblem(column, reason)
            document[column.rsplit(".", 1)[1]] = BOOLEANS[value.lower()]
        else:
            details[column.rsplit(".", 1)[1]] = value
    if unset_metadata and any(metadata.values()):
        reason = "Unsetting all metadata conflicts with setting metadata.<key> in the same row."
        raise RowProblem("metadata", reason)
    if unset_document and document:
        reason = f"Unsetting {DOC} conflicts with setting {DOC}.<option> in the same row."
        raise RowProblem(DOC, reason)
    if unset_metadata or metadata:  # unsetting all metadata covers unsetting some keys
        data["metadata"] = "" if unset_metadata else metadata
    if unset_document or document:
        data["options"] = {"document": "" if unset_document else document}
    if details:
        data["provided_details"] = details
    if not data:
        raise RowProblem(None, "Nothing to update: every update column is empty.")
    try:
        return parse_update(data)
    except InvalidUpdate as exc:
        raise RowProblem(_column_for_field(exc.field), exc.reason) from exc


def _column_for_field(field: str | None) -> str | None:
    """The CSV column for a dotted field of ``InvalidUpdate`` (metadata keys may hold dots)."""
    if field is None or field.startswith("metadata."):
        return field
    for column in sorted(UPDATE_COLUMNS, key=len, reverse=True):
        if field == column or field.startswith((f"{column}.", f"{column}[")):
            return column
    return field


def columns_from_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The input-format cells for a canonical update (the inverse of the reader's mapping).

    Args:
        params: A Stripe-shaped update, as ``SessionUpdate.to_params()`` gives it.

    Returns:
        Column name -> cell text, in the canonical column order, before neutralisation.
    """
    cells: dict[str, str] = {}
    if "type" in params:
        cells["type"] = str(params["type"])
    metadata = params.get("metadata")
    if metadata == "":
        cells["metadata"] = UNSET
    elif isinstance(metadata, Mapping):
        for key in sorted(metadata):
            value = str(metadata[key])
            cells[f"metadata.{key}"] = UNSET if value == "" else escape_unset(value)
    options = params.get("options")
    document = options.get("document") if isinstance(options, Mapping) else None
    if document == "":
        cells[DOC] = UNSET
    elif isinstance(document, Mapping):
        if "allowed_types" in document:
            cells[f"{DOC}.allowed_types"] = LIST_SEPARATOR.join(document["allowed_types"])
        for column in BOOLEAN_COLUMNS:
            name = column.rsplit(".", 1)[1]
            if name in document:
                cells[column] = "true" if document[name] else "false"
    details = params.get("provided_details")
    if isinstance(details, Mapping):
        for name in ("email", "phone"):
            if name in details:
                cells[f"provided_details.{name}"] = escape_unset(str(details[name]))
    return cells
