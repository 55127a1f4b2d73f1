"""CSV in and out: a streaming reader of update rows, and the report and failures writers.

The format is described for users in ``docs/csv-format.md``; this module is its reference.
Reading is streamed: one physical line and one record at a time, so memory does not grow with
the file. Duplicate sessions are not detected here (the ledger does it). A malformed file
raises ``CsvFileError`` (possibly after some rows were yielded: callers stage rows and discard
them on a file error); a bad row is yielded with a ``RowError`` and no update.

Writers prefix ``'`` to formula-like cells (``=``, ``+``, ``-``, ``@``, tab, CR) so a
spreadsheet never evaluates them, and to cells with surrounding whitespace so no reader trims
them; the reader removes one such ``'`` again and ``!!unset`` stands for the text ``!unset``,
so a failures file re-submitted as it is gives back every update byte for byte.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, TextIO

from vsbatch.errors import CsvFileError, InvalidUpdate
from vsbatch.model.row import NewRow, RowRecord
from vsbatch.model.update import is_account_id, parse_update
from vsbatch.ops.reasons import reason as row_reason

if TYPE_CHECKING:
    from vsbatch.model.update import SessionUpdate

__all__ = [
    "ACCOUNT_COLUMN",
    "FAILURE_COLUMNS",
    "ID_COLUMN",
    "IGNORED_COLUMNS",
    "LIST_SEPARATOR",
    "MAX_COLUMNS",
    "MAX_FIELD_CHARS",
    "MAX_LINE_CHARS",
    "REPORT_COLUMNS",
    "UNSET",
    "UPDATE_COLUMNS",
    "ParsedRow",
    "RowError",
    "columns_from_params",
    "file_digest",
    "neutralise",
    "read_updates",
    "write_failures",
    "write_report_csv",
]

UNSET = "!unset"
LIST_SEPARATOR = "|"
# Caps far above any real update file (Stripe: 50 metadata keys, 500-character values,
# 800-character emails) that keep memory flat on hostile or broken input.
MAX_COLUMNS = 200  # not counting the columns vsbatch's own outputs add (IGNORED_COLUMNS)
MAX_FIELD_CHARS = 10_000
MAX_LINE_CHARS = 1024 * 1024  # one physical line, and one row (a record over many lines)
_UNKNOWN_LISTED = 5  # unknown columns named in the refusal; the rest are counted
ID_COLUMN = "id"
ACCOUNT_COLUMN = "stripe_account"
_DOC = "options.document"
_BOOLEAN_COLUMNS = tuple(
    f"{_DOC}.{name}"
    for name in ("require_id_number", "require_live_capture", "require_matching_selfie")
)
UPDATE_COLUMNS: tuple[str, ...] = (
    "type",
    "metadata",
    _DOC,
    f"{_DOC}.allowed_types",
    *_BOOLEAN_COLUMNS,
    "provided_details.email",
    "provided_details.phone",
)
FAILURE_COLUMNS: tuple[str, ...] = (
    "row",
    "outcome",
    "reason",
    "error_column",
    "error_type",
    "error_code",
    "error_message",
    "retryable",
    "request_id",
)
REPORT_COLUMNS: tuple[str, ...] = (
    "row",
    ID_COLUMN,
    ACCOUNT_COLUMN,
    "outcome",
    "reason",
    "error_column",
    "attempts",
    "error_type",
    "error_code",
    "error_message",
    "request_id",
    "session_status",
)
# Columns our own outputs add: accepted on input and ignored, so outputs can be re-submitted.
IGNORED_COLUMNS: frozenset[str] = frozenset(FAILURE_COLUMNS + REPORT_COLUMNS) - {
    ID_COLUMN,
    ACCOUNT_COLUMN,
} | {"batch_id"}

_FIXED_COLUMNS = (ID_COLUMN, ACCOUNT_COLUMN, *UPDATE_COLUMNS)
_ID_RE = re.compile(r"vs_[A-Za-z0-9]+")
_MAX_ID_CHARS = 255
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_FORMULA_START = "=+-@\t\r"
_ESCAPED_UNSET = re.compile(r"!+unset")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that surrogateescape could not decode
_CSV_ERRORS = {
    "unexpected end of data": 'a quoted cell is never closed (unterminated ")',
    "',' expected after '\"'": 'text follows a closing quote (double a quote inside a cell: "")',
}


@dataclass(frozen=True)
class RowError:
    """Why one row is rejected: ``column`` is the CSV column the user sees (None: the row)."""

    column: str | None
    reason: str


@dataclass(frozen=True)
class ParsedRow:
    """One data row: its spreadsheet row number, session, and either an update or an error."""

    row: int
    session_id: str
    account: str | None
    update: SessionUpdate | None
    error: RowError | None
    raw: dict[str, str]

    @property
    def params(self) -> dict[str, Any] | None:
        """The canonical Stripe-shaped update, or None for a rejected row."""
        return None if self.update is None else self.update.to_params()

    def to_new_row(self, idempotency_key: str | None = None) -> NewRow:
        """The ledger's ``NewRow`` for this row (rejected rows carry their rejection)."""
        rejection = None if self.error is None else (self.error.column, self.error.reason)
        return NewRow(
            row=self.row,
            session_id=self.session_id,
            account=self.account,
            params=self.params,
            idempotency_key=idempotency_key,
            rejection=rejection,
        )


def read_updates(
    source: str | os.PathLike[str] | IO[bytes], *, strict: bool = False
) -> Iterator[ParsedRow]:
    """Stream the rows of an update CSV, one ``ParsedRow`` per non-blank data row.

    Args:
        source: A path, or a binary stream (left open).
        strict: Raise ``CsvFileError`` at the first bad row instead of yielding it.

    Returns:
        An iterator; rows come in file order, numbered as a spreadsheet shows them.

    Raises:
        CsvFileError: The file is refused (possibly after rows were yielded).
    """
    if isinstance(source, str | os.PathLike):
        try:
            context: AbstractContextManager[IO[bytes]] = open(source, "rb")
        except OSError as exc:
            raise CsvFileError(f"cannot read {os.fspath(source)!s}: {exc.strerror}") from exc
    else:
        context = nullcontext(source)
    with context as binary:
        try:
            yield from _parse(binary, strict)
        except OSError as exc:
            raise CsvFileError(f"cannot read the file: {exc.strerror or exc}") from exc


def file_digest(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, hex, read in chunks (the batch remembers what it came from)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise CsvFileError(f"cannot read {os.fspath(path)!s}: {exc.strerror}") from exc
    return digest.hexdigest()


def _refuse(reason: str, row: int | None = None, column: str | None = None) -> CsvFileError:
    where = "" if row is None else f"row {row}" + ("" if column is None else f", column {column}")
    return CsvFileError(f"{where}: {reason}" if where else reason, row=row, column=column)


class _Counter:
    """Records the csv reader has produced; the one being read is ``records + 1``."""

    def __init__(self) -> None:
        self.records = 0


def _parse(binary: IO[bytes], strict: bool) -> Iterator[ParsedRow]:
    head = binary.read(4)
    _check_signature(head)
    text = io.TextIOWrapper(
        io.BufferedReader(_Prefixed(head, binary)),
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="",
    )
    counter = _Counter()
    records = csv.reader(_checked_lines(text, counter), strict=True)
    if csv.field_size_limit() <= MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS + 1)
    header: _Header | None = None
    data_rows = 0
    while True:
        try:
            cells = next(records)
        except StopIteration:
            break
        except csv.Error as exc:
            reason = _CSV_ERRORS.get(str(exc), f"malformed CSV ({exc})")
            if str(exc).startswith("field larger than field limit"):
                reason = f"a cell is larger than {MAX_FIELD_CHARS} characters (unterminated quote?)"
            raise _refuse(reason, counter.records + 1) from exc
        counter.records += 1
        names = header.names if header else cells
        for index, cell in enumerate(cells):
            if len(cell) > MAX_FIELD_CHARS:
                column = names[index].strip() if index < len(names) else None
                reason = f"a cell is larger than {MAX_FIELD_CHARS} characters"
                raise _refuse(reason, counter.records, column)
        if header is None:
            header = _Header(cells)
            continue
        if not any(cell.strip() for cell in cells):
            continue  # blank rows (Excel pads with them) still count in row numbers
        if len(cells) > len(header.names) and any(c.strip() for c in cells[len(header.names) :]):
            reason = f"{len(cells)} cells but the header has {len(header.names)} columns"
            raise _refuse(reason + " (an unquoted comma in a value?)", counter.records)
        data_rows += 1
        parsed = header.parse(counter.records, cells)
        if strict and parsed.error is not None:
            raise _refuse(parsed.error.reason, parsed.row, parsed.error.column)
        yield parsed
    if header is None:
        raise _refuse("the file has no header row")
    if data_rows == 0:
        raise _refuse("no data rows: the file has a header but no rows to apply")


def _check_signature(head: bytes) -> None:
    if not head:
        raise _refuse("the file is empty (0 bytes)")
    save = "; save it as CSV UTF-8"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _refuse("the file is UTF-16 encoded" + save)
    if head.startswith(b"PK\x03\x04"):
        raise _refuse("the file is a ZIP archive (an .xlsx workbook?), not CSV" + save)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise _refuse("the file is an Excel 97-2003 workbook (.xls), not CSV" + save)


def _checked_lines(text: io.TextIOWrapper, counter: _Counter) -> Iterator[str]:
    """Physical lines, refused when too long, binary or not UTF-8 (at the row being read).

    A row's lines are counted together: quoted line breaks cannot make one record (and the
    list of cells the csv module builds for it) grow past ``MAX_LINE_CHARS`` either.
    """
    record, size = 0, 0
    while line := text.readline(MAX_LINE_CHARS + 1):
        row = counter.records + 1
        if len(line) > MAX_LINE_CHARS:
            raise _refuse(f"a line is longer than {MAX_LINE_CHARS} characters", row)
        size = size + len(line) if row == record else len(line)
        record = row
        if size > MAX_LINE_CHARS:
            reason = f"a row is longer than {MAX_LINE_CHARS} characters (an unterminated quote?)"
            raise _refuse(reason, row)
        if "\x00" in line:
            reason = "the file contains NUL bytes: binary content, or UTF-16 without a BOM"
            raise _refuse(reason + "; save it as CSV UTF-8", row)
        bad = _UNDECODABLE.search(line)
        if bad is not None:
            byte = ord(bad.group()) - 0xDC00
            before = line[max(0, bad.start() - 20) : bad.start()]
            where = f"after {before!r}" if before else "at the start of a line"
            reason = f"not valid UTF-8 (byte 0x{byte:02X} {where})"
            raise _refuse(reason + "; save the file as CSV UTF-8", row)
        yield line


class _Prefixed(io.RawIOBase):
    """A raw stream that replays bytes already read, then reads on (never closes the inner)."""

    def __init__(self, head: bytes, inner: IO[bytes]) -> None:
        self._head = head
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            size = min(len(view), len(self._head))
            view[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._inner.read(len(view))
        view[: len(data)] = data
        return len(data)


class _Header:
    """The header row, checked: each column's kind, and the metadata keys."""

    def __init__(self, cells: list[str]) -> None:
        self.names = [cell.strip() for cell in cells]
        if not any(self.names):
            raise _refuse("the header row is empty; row 1 must name the columns", 1)
        counted = sum(1 for name in self.names if name not in IGNORED_COLUMNS)
        if counted > MAX_COLUMNS:
            reason = f"{counted} columns, more than the {MAX_COLUMNS} vsbatch reads (the columns"
            raise _refuse(
                f"{reason} of its own outputs not counted); remove the columns you do not need", 1
            )
        if len(self.names) == 1 and (";" in self.names[0] or "\t" in self.names[0]):
            reason = "the header is a single column: the file seems to use ';' or tabs as"
            raise _refuse(reason + " separator; vsbatch reads comma-separated files", 1)
        seen: dict[str, int] = {}
        unknown: list[str] = []
        for index, name in enumerate(self.names, start=1):
            if not name:
                raise _refuse(f"column {index} has no name in the header", 1)
            if name in seen:
                reason = f"duplicate column (columns {seen[name]} and {index})"
                raise _refuse(reason, 1, name)
            seen[name] = index
            if name.startswith("metadata."):
                _check_metadata_key(name)
            elif name not in _FIXED_COLUMNS and name not in IGNORED_COLUMNS:
                unknown.append(name)
        if unknown:
            listed = ", ".join(_describe_unknown(name) for name in unknown[:_UNKNOWN_LISTED])
            if len(unknown) > _UNKNOWN_LISTED:
                listed += f" and {len(unknown) - _UNKNOWN_LISTED} more"
            reason = f"unknown column{'s' if len(unknown) > 1 else ''} {listed}"
            raise _refuse(reason + "; see docs/csv-format.md", 1, unknown[0])
        if ID_COLUMN not in seen:
            raise _refuse("no id column: the header must name the session column 'id'", 1)

    def parse(self, row: int, cells: list[str]) -> ParsedRow:
        cells = cells + [""] * (len(self.names) - len(cells))  # short rows: missing = empty
        raw = dict(zip(self.names, cells, strict=False))
        session_id = raw[ID_COLUMN].strip()
        account = raw.get(ACCOUNT_COLUMN, "").strip() or None
        try:
            update = _update_from_cells(session_id, account, raw)
        except _RowProblem as problem:
            return ParsedRow(row, session_id, account, None, problem.error, raw)
        return ParsedRow(row, session_id, account, update, None, raw)


def _check_metadata_key(name: str) -> None:
    key = name[len("metadata.") :]
    if not key:
        raise _refuse("empty metadata key (write metadata.<key>)", 1, name)
    try:
        parse_update({"metadata": {key: "x"}})
    except InvalidUpdate as exc:
        raise _refuse(exc.reason, 1, name) from exc


def _describe_unknown(name: str) -> str:
    guess = _closest(name)
    return repr(name) + ("" if guess is None else f" (did you mean {guess!r}?)")


def _closest(name: str) -> str | None:
    lowered = name.lower()
    candidates = {c.lower(): c for c in (*_FIXED_COLUMNS, *IGNORED_COLUMNS)}
    for separator in (".", "_", ":"):
        prefix, found, key = name.partition(separator)
        if (
            found
            and key
            and difflib.SequenceMatcher(None, prefix.lower(), "metadata").ratio() > 0.6
        ):
            candidates.setdefault(f"metadata.{key}".lower(), f"metadata.{key}")
    if lowered in candidates:
        return candidates[lowered]
    if "session" in lowered:
        return ID_COLUMN
    by_last_part = [c for c in _FIXED_COLUMNS if c.rsplit(".", 1)[-1] == lowered]
    if by_last_part:
        return by_last_part[0]
    matches = difflib.get_close_matches(lowered, candidates, n=1, cutoff=0.75)
    return candidates[matches[0]] if matches else None


class _RowProblem(Exception):
    def __init__(self, column: str | None, reason: str) -> None:
        super().__init__(reason)
        self.error = RowError(column, reason)


def _protected(text: str) -> bool:
    """True for text the writer prefixes with ``'`` (and the reader takes it off again).

    That is text which, after any leading quotes, is empty or starts like a formula or with
    whitespace, or which ends with whitespace: a spreadsheet would run it or a reader trim it.
    The answer is the same for ``text`` and ``"'" + text``, which makes the prefix reversible.
    """
    bare = text.lstrip("'")
    return not bare or bare[0] in _FORMULA_START or bare[0].isspace() or text[-1].isspace()


def _value(cell: str, *, trim: bool = True) -> str:
    """The cell's value: trimmed (except metadata) unless protected by a leading ``'``.

    One leading ``'`` before protected text (see :func:`_protected`) is removed and the rest
    is kept exactly; a cell of whitespace only is empty.
    """
    value = cell.lstrip() if trim else cell
    if value[:1] == "'" and _protected(value[1:]):
        return value[1:]
    value = value.rstrip() if trim else value
    return value if value.strip() else ""


def _update_from_cells(session_id: str, account: str | None, raw: dict[str, str]) -> SessionUpdate:
    if not session_id:
        raise _RowProblem(ID_COLUMN, "Missing session id.")
    if len(session_id) > _MAX_ID_CHARS or not _ID_RE.fullmatch(session_id):
        reason = f"Not a VerificationSession id: {session_id!r} (expected vs_ and letters/digits)."
        raise _RowProblem(ID_COLUMN, reason)
    if account is not None and not is_account_id(account):
        reason = f"Not a Stripe account id: {account!r} (expected acct_ and letters/digits)."
        raise _RowProblem(ACCOUNT_COLUMN, reason)
    data: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    document: dict[str, Any] = {}
    details: dict[str, str] = {}
    unset_metadata = unset_document = False
    for column, cell in raw.items():
        if column in (ID_COLUMN, ACCOUNT_COLUMN) or column in IGNORED_COLUMNS:
            continue
        is_metadata = column.startswith("metadata.")
        value = _value(cell, trim=not is_metadata)
        if not value:
            continue
        if value.strip() == UNSET:
            if is_metadata:
                metadata[column[len("metadata.") :]] = ""
            elif column in ("metadata", _DOC):
                unset_metadata = unset_metadata or column == "metadata"
                unset_document = unset_document or column == _DOC
            else:
                reason = f"{UNSET} is only allowed in metadata and options.document columns."
                raise _RowProblem(column, reason)
            continue
        if _ESCAPED_UNSET.fullmatch(value.strip()):
            value = value.replace("!!", "!", 1)  # "!!unset" is the literal text "!unset"
        if is_metadata:
            metadata[column[len("metadata.") :]] = value
        elif column in ("metadata", _DOC):
            reason = f"This column only takes {UNSET}; set fields in {column}.<name> columns."
            raise _RowProblem(column, reason)
        elif column == "type":
            data["type"] = value.lower()
        elif column == f"{_DOC}.allowed_types":
            items = [item.strip().lower() for item in value.split(LIST_SEPARATOR)]
            if not all(items):
                reason = f"Empty item in the list (separate items with {LIST_SEPARATOR})."
                raise _RowProblem(column, reason)
            document["allowed_types"] = items
        elif column in _BOOLEAN_COLUMNS:
            if value.lower() not in _BOOLEANS:
                reason = f"Expected true or false (or yes/no, 1/0), got {value!r}."
                raise _RowProblem(column, reason)
            document[column.rsplit(".", 1)[1]] = _BOOLEANS[value.lower()]
        else:
            details[column.rsplit(".", 1)[1]] = value
    if unset_metadata and any(metadata.values()):
        reason = "Unsetting all metadata conflicts with setting metadata.<key> in the same row."
        raise _RowProblem("metadata", reason)
    if unset_document and document:
        reason = f"Unsetting {_DOC} conflicts with setting {_DOC}.<option> in the same row."
        raise _RowProblem(_DOC, reason)
    if unset_metadata or metadata:  # unsetting all metadata covers unsetting some keys
        data["metadata"] = "" if unset_metadata else metadata
    if unset_document or document:
        data["options"] = {"document": "" if unset_document else document}
    if details:
        data["provided_details"] = details
    if not data:
        raise _RowProblem(None, "Nothing to update: every update column is empty.")
    try:
        return parse_update(data)
    except InvalidUpdate as exc:
        raise _RowProblem(_column_for_field(exc.field), exc.reason) from exc


def _column_for_field(field: str | None) -> str | None:
    """The CSV column for a dotted field of ``InvalidUpdate`` (metadata keys may hold dots)."""
    if field is None or field.startswith("metadata."):
        return field
    for column in sorted(UPDATE_COLUMNS, key=len, reverse=True):
        if field == column or field.startswith((f"{column}.", f"{column}[")):
            return column
    return field


# -- writing ---------------------------------------------------------------------------------


def neutralise(cell: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would run as a formula or a reader would trim.

    The reader removes that ``'`` again (see :func:`_protected`), so every value comes back.
    """
    return f"'{cell}" if cell and _protected(cell) else cell


def _escape_unset(value: str) -> str:
    """``!unset`` (spaces around it allowed) written as a literal value: one more ``!``."""
    return value.replace("!", "!!", 1) if _ESCAPED_UNSET.fullmatch(value.strip()) else value


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
            cells[f"metadata.{key}"] = UNSET if value == "" else _escape_unset(value)
    options = params.get("options")
    document = options.get("document") if isinstance(options, Mapping) else None
    if document == "":
        cells[_DOC] = UNSET
    elif isinstance(document, Mapping):
        if "allowed_types" in document:
            cells[f"{_DOC}.allowed_types"] = LIST_SEPARATOR.join(document["allowed_types"])
        for column in _BOOLEAN_COLUMNS:
            name = column.rsplit(".", 1)[1]
            if name in document:
                cells[column] = "true" if document[name] else "false"
    details = params.get("provided_details")
    if isinstance(details, Mapping):
        for name in ("email", "phone"):
            if name in details:
                cells[f"provided_details.{name}"] = _escape_unset(str(details[name]))
    return cells


def _column_order(name: str) -> tuple[int, str]:
    if name.startswith("metadata."):
        return (_FIXED_COLUMNS.index("metadata"), name)
    return (_FIXED_COLUMNS.index(name), "")


def as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_failures(
    rows: Iterable[RowRecord] | Callable[[], Iterable[RowRecord]], out: TextIO
) -> int:
    """Write rows as a CSV in the input format plus error columns, re-submittable as it is.

    The header depends on every row's params, so rows are read once and spooled (in memory,
    then in a temporary file past 4 MiB) while the column names are collected; memory stays
    bounded by the number of distinct columns. A rejected row (no params) gets back the input
    cells stored in ``record.extra["raw"]`` when the pipeline kept them, else only its id.

    Args:
        rows: The records to write (the caller picks which outcomes), in row order, or a
            function returning them (called once).
        out: A text stream opened with ``newline=""``.

    Returns:
        The number of rows written.
    """
    records = rows() if callable(rows) else rows
    columns: set[str] = set()
    written = 0
    with tempfile.SpooledTemporaryFile(max_size=4 << 20, mode="w+", encoding="utf-8") as spool:
        for record in records:
            cells = _failure_cells(record)
            columns.update(cells)
            spool.write(json.dumps(cells) + "\n")
            written += 1
        spool.seek(0)
        columns -= {ID_COLUMN, *FAILURE_COLUMNS}
        header = [ID_COLUMN, *sorted(columns, key=_column_order), *FAILURE_COLUMNS]
        writer = csv.DictWriter(out, header)
        writer.writeheader()
        for line in spool:
            writer.writerow(json.loads(line))
    return written


def _failure_cells(record: RowRecord) -> dict[str, str]:
    """One failures line: id, account (when set), input cells, error cells; neutralised."""
    if record.params is not None:
        cells = {k: neutralise(v) for k, v in columns_from_params(record.params).items()}
    else:
        raw: Mapping[str, str] = record.extra.get("raw") or {}
        cells = {  # raw cells are already in file form: only a bare formula needs a '
            k: f"'{v}" if v[:1] and v[0] in _FORMULA_START else v
            for k, v in raw.items()
            if (k in UPDATE_COLUMNS or k.startswith("metadata.")) and v.strip()
        }
    cells[ID_COLUMN] = neutralise(record.session_id)
    if record.account:
        cells[ACCOUNT_COLUMN] = neutralise(record.account)
    errors = (
        record.row,
        record.outcome,
        record.reason,
        record.column,
        record.error_type,
        record.error_code,
        record.error_message,
        record.retryable,
        record.request_id,
    )
    cells.update(zip(FAILURE_COLUMNS, (neutralise(as_text(v)) for v in errors), strict=True))
    return cells


def write_report_csv(rows: Iterable[RowRecord], out: TextIO) -> int:
    """Write one line per row with its outcome (``REPORT_COLUMNS``), streaming.

    Args:
        rows: The records to report, in row order.
        out: A text stream opened with ``newline=""``.

    Returns:
        The number of rows written.
    """
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    written = 0
    for record in rows:
        values = (
            record.row,
            record.session_id,
            record.account,
            record.outcome,
            row_reason(record),
            record.column,
            record.attempts,
            record.error_type,
            record.error_code,
            record.error_message,
            record.request_id,
            record.session_status,
        )
        writer.writerow([neutralise(as_text(value)) for value in values])
        written += 1
    return written
