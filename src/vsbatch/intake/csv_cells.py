"""A row's cells and a canonical update, both ways: the reader's mapping from cells to a
``SessionUpdate`` (with the column to blame when a row is refused) and its inverse for the
failures file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
    """The row's update, or a ``RowProblem`` naming the first fault in the order a user fixes.

    The faults come in this order: the id, the account, each cell in column order, conflicts
    between cells, an empty update, then the model's own checks.
    """
    check_ids(session_id, account)
    cells = _RowCells()
    for column, cell in raw.items():
        if column in (ID_COLUMN, ACCOUNT_COLUMN) or column in IGNORED_COLUMNS:
            continue
        cells.add(column, cell)
    data = cells.to_data()
    if not data:
        raise RowProblem(None, "Nothing to update: every update column is empty.")
    try:
        return parse_update(data)
    except InvalidUpdate as exc:
        raise RowProblem(_column_for_field(exc.field), exc.reason) from exc


def check_ids(session_id: str, account: str | None) -> None:
    """A ``RowProblem`` for a missing or malformed session id, or a malformed account."""
    if not session_id:
        raise RowProblem(ID_COLUMN, "Missing session id.")
    if len(session_id) > MAX_ID_CHARS or not ID_RE.fullmatch(session_id):
        reason = f"Not a VerificationSession id: {session_id!r} (expected vs_ and letters/digits)."
        raise RowProblem(ID_COLUMN, reason)
    if account is not None and not is_account_id(account):
        reason = f"Not a Stripe account id: {account!r} (expected acct_ and letters/digits)."
        raise RowProblem(ACCOUNT_COLUMN, reason)


@dataclass
class _RowCells:
    """The update columns of one row, gathered cell by cell into the parts of an update."""

    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    unset_metadata: bool = False
    unset_document: bool = False

    def add(self, column: str, cell: str) -> None:
        """Take one cell: skip it when empty, else hand it to its column kind's handler."""
        is_metadata = column.startswith("metadata.")
        value = cell_value(cell, trim=not is_metadata)
        if not value:
            return
        if value.strip() == UNSET:
            _UNSETTERS.get(_kind(column), _refuse_unset)(self, column)
            return
        if ESCAPED_UNSET.fullmatch(value.strip()):
            value = value.replace("!!", "!", 1)  # "!!unset" is the literal text "!unset"
        _SETTERS[_kind(column)](self, column, value)

    def to_data(self) -> dict[str, Any]:
        """The Stripe-shaped update, after refusing an unset and a set of the same field."""
        if self.unset_metadata and any(self.metadata.values()):
            reason = "Unsetting all metadata conflicts with setting metadata.<key> in the same row."
            raise RowProblem("metadata", reason)
        if self.unset_document and self.document:
            reason = f"Unsetting {DOC} conflicts with setting {DOC}.<option> in the same row."
            raise RowProblem(DOC, reason)
        data = dict(self.data)
        if self.unset_metadata or self.metadata:  # unsetting all covers unsetting some keys
            data["metadata"] = "" if self.unset_metadata else self.metadata
        if self.unset_document or self.document:
            data["options"] = {"document": "" if self.unset_document else self.document}
        if self.details:
            data["provided_details"] = self.details
        return data


def _kind(column: str) -> str:
    """The column's kind: a metadata key, one of the fixed columns, or a provided detail."""
    if column.startswith("metadata."):
        return "metadata.<key>"
    return column if column in _SETTERS else "provided_details"


def _unset_metadata_key(cells: _RowCells, column: str) -> None:
    cells.metadata[column[len("metadata.") :]] = ""


def _unset_all_metadata(cells: _RowCells, column: str) -> None:
    cells.unset_metadata = True


def _unset_document(cells: _RowCells, column: str) -> None:
    cells.unset_document = True


def _refuse_unset(cells: _RowCells, column: str) -> None:
    reason = f"{UNSET} is only allowed in metadata and options.document columns."
    raise RowProblem(column, reason)


def _set_metadata_key(cells: _RowCells, column: str, value: str) -> None:
    cells.metadata[column[len("metadata.") :]] = value


def _refuse_value(cells: _RowCells, column: str, value: str) -> None:
    reason = f"This column only takes {UNSET}; set fields in {column}.<name> columns."
    raise RowProblem(column, reason)


def _set_type(cells: _RowCells, column: str, value: str) -> None:
    cells.data["type"] = value.lower()


def _set_allowed_types(cells: _RowCells, column: str, value: str) -> None:
    items = [item.strip().lower() for item in value.split(LIST_SEPARATOR)]
    if not all(items):
        reason = f"Empty item in the list (separate items with {LIST_SEPARATOR})."
        raise RowProblem(column, reason)
    cells.document["allowed_types"] = items


def _set_boolean(cells: _RowCells, column: str, value: str) -> None:
    if value.lower() not in BOOLEANS:
        reason = f"Expected true or false (or yes/no, 1/0), got {value!r}."
        raise RowProblem(column, reason)
    cells.document[column.rsplit(".", 1)[1]] = BOOLEANS[value.lower()]


def _set_detail(cells: _RowCells, column: str, value: str) -> None:
    cells.details[column.rsplit(".", 1)[1]] = value


# A cell's handler by column kind (see _kind): one for a value, one for UNSET.
_SETTERS: dict[str, Callable[[_RowCells, str, str], None]] = {
    "metadata.<key>": _set_metadata_key,
    "metadata": _refuse_value,
    DOC: _refuse_value,
    "type": _set_type,
    f"{DOC}.allowed_types": _set_allowed_types,
    **dict.fromkeys(BOOLEAN_COLUMNS, _set_boolean),
    "provided_details": _set_detail,
}
_UNSETTERS: dict[str, Callable[[_RowCells, str], None]] = {
    "metadata.<key>": _unset_metadata_key,
    "metadata": _unset_all_metadata,
    DOC: _unset_document,
}


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
    cells.update(_metadata_cells(params.get("metadata")))
    options = params.get("options")
    cells.update(_document_cells(options.get("document") if isinstance(options, Mapping) else None))
    cells.update(_details_cells(params.get("provided_details")))
    return cells


def _metadata_cells(metadata: Any) -> dict[str, str]:
    if metadata == "":
        return {"metadata": UNSET}
    if not isinstance(metadata, Mapping):
        return {}
    cells: dict[str, str] = {}
    for key in sorted(metadata):
        value = str(metadata[key])
        cells[f"metadata.{key}"] = UNSET if value == "" else escape_unset(value)
    return cells


def _document_cells(document: Any) -> dict[str, str]:
    if document == "":
        return {DOC: UNSET}
    if not isinstance(document, Mapping):
        return {}
    cells: dict[str, str] = {}
    if "allowed_types" in document:
        cells[f"{DOC}.allowed_types"] = LIST_SEPARATOR.join(document["allowed_types"])
    for column in BOOLEAN_COLUMNS:
        name = column.rsplit(".", 1)[1]
        if name in document:
            cells[column] = "true" if document[name] else "false"
    return cells


def _details_cells(details: Any) -> dict[str, str]:
    if not isinstance(details, Mapping):
        return {}
    return {
        f"provided_details.{name}": escape_unset(str(details[name]))
        for name in ("email", "phone")
        if name in details
    }
