"""The streaming reader of update CSVs: one physical line and one record at a time, so memory
does not grow with the file.

Duplicate sessions are not detected here (the ledger does it). A malformed file raises
``CsvFileError`` (possibly after some rows were yielded: callers stage rows and discard them on
a file error); a bad row is yielded with a ``RowError`` and no update.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

from vsbatch.errors import CsvFileError, InvalidUpdate
from vsbatch.intake.csv_cells import RowError, RowProblem, check_ids, update_from_cells
from vsbatch.intake.csv_format import (
    ACCOUNT_COLUMN,
    FIXED_COLUMNS,
    ID_COLUMN,
    IGNORED_COLUMNS,
    MAX_COLUMNS,
    MAX_FIELD_CHARS,
    MAX_LINE_CHARS,
)
from vsbatch.intake.fast_cells import CellPlan
from vsbatch.model.row import NewRow
from vsbatch.model.update import parse_update

if TYPE_CHECKING:
    from vsbatch.model.update import SessionUpdate

_UNKNOWN_LISTED = 5  # unknown columns named in the refusal; the rest are counted
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that surrogateescape could not decode
_CSV_ERRORS = {
    "unexpected end of data": 'a quoted cell is never closed (unterminated ")',
    "',' expected after '\"'": 'text follows a closing quote (double a quote inside a cell: "")',
}


@dataclass(frozen=True)
class ParsedRow:
    """One data row: its spreadsheet row number, session, and either an update (``params``,
    canonical and Stripe-shaped) or an error."""

    row: int
    session_id: str
    account: str | None
    params: dict[str, Any] | None
    error: RowError | None
    raw: dict[str, str]

    @cached_property
    def update(self) -> SessionUpdate | None:
        """The checked update, or None for a rejected row (built on first use: staging needs
        only ``params``)."""
        return None if self.params is None else parse_update(self.params)

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
    counter = _Counter()
    records = _records(binary, counter)
    header: _Header | None = None
    data_rows = 0
    while (cells := _next_record(records, counter)) is not None:
        counter.records += 1
        _check_cell_sizes(cells, header.names if header else cells, counter.records)
        if header is None:
            header = _Header(cells)
            continue
        if not cells or not (cells[0].strip() or any(cell.strip() for cell in cells)):
            continue  # blank rows (Excel pads with them) still count in row numbers
        _check_row_width(cells, header, counter.records)
        data_rows += 1
        parsed = header.parse(counter.records, cells)
        if strict and parsed.error is not None:
            raise _refuse(parsed.error.reason, parsed.row, parsed.error.column)
        yield parsed
    if header is None:
        raise _refuse("the file has no header row")
    if data_rows == 0:
        raise _refuse("no data rows: the file has a header but no rows to apply")


def _records(binary: IO[bytes], counter: _Counter) -> Iterator[list[str]]:
    """The csv module's records of the file, after its first bytes are checked."""
    head = binary.read(4)
    _check_signature(head)
    text = io.TextIOWrapper(
        io.BufferedReader(_Prefixed(head, binary)),
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="",
    )
    records = csv.reader(_checked_lines(text, counter), strict=True)
    if csv.field_size_limit() <= MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS + 1)
    return records


def _next_record(records: Iterator[list[str]], counter: _Counter) -> list[str] | None:
    """The next record, None at the end; the csv module's errors in the user's words."""
    try:
        return next(records)
    except StopIteration:
        return None
    except csv.Error as exc:
        reason = _CSV_ERRORS.get(str(exc), f"malformed CSV ({exc})")
        if str(exc).startswith("field larger than field limit"):
            reason = f"a cell is larger than {MAX_FIELD_CHARS} characters (unterminated quote?)"
        raise _refuse(reason, counter.records + 1) from exc


def _check_cell_sizes(cells: list[str], names: list[str], row: int) -> None:
    if not cells or max(map(len, cells)) <= MAX_FIELD_CHARS:
        return  # the usual row, checked without a loop in Python
    for index, cell in enumerate(cells):
        if len(cell) > MAX_FIELD_CHARS:
            column = names[index].strip() if index < len(names) else None
            reason = f"a cell is larger than {MAX_FIELD_CHARS} characters"
            raise _refuse(reason, row, column)


def _check_row_width(cells: list[str], header: _Header, row: int) -> None:
    """Refuse a row with non-empty cells past the header's last column."""
    width = len(header.names)
    if len(cells) > width and any(c.strip() for c in cells[width:]):
        reason = f"{len(cells)} cells but the header has {width} columns"
        raise _refuse(reason + " (an unquoted comma in a value?)", row)


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
        _check_header_shape(self.names)
        self.plan = CellPlan(self.names)
        seen: dict[str, int] = {}
        unknown: list[str] = []
        for index, name in enumerate(self.names, start=1):
            _check_column_name(name, index, seen)
            seen[name] = index
            if name.startswith("metadata."):
                _check_metadata_key(name)
            elif name not in FIXED_COLUMNS and name not in IGNORED_COLUMNS:
                unknown.append(name)
        if unknown:
            _refuse_unknown(unknown)
        if ID_COLUMN not in seen:
            raise _refuse("no id column: the header must name the session column 'id'", 1)

    def parse(self, row: int, cells: list[str]) -> ParsedRow:
        if len(cells) < len(self.names):
            cells = cells + [""] * (len(self.names) - len(cells))  # short rows: missing = empty
        raw = dict(zip(self.names, cells, strict=False))
        session_id = raw[ID_COLUMN].strip()
        account = raw.get(ACCOUNT_COLUMN, "").strip() or None
        try:
            check_ids(session_id, account)
            params = self.plan.params(cells)
            if params is None:  # anything unusual: the checked path, which names the fault
                params = update_from_cells(session_id, account, raw).to_params()
        except RowProblem as problem:
            return ParsedRow(row, session_id, account, None, problem.error, raw)
        return ParsedRow(row, session_id, account, params, None, raw)


def _check_header_shape(names: list[str]) -> None:
    """Refuse an empty header, too many columns, or a file split by ';' or tabs."""
    if not any(names):
        raise _refuse("the header row is empty; row 1 must name the columns", 1)
    counted = sum(1 for name in names if name not in IGNORED_COLUMNS)
    if counted > MAX_COLUMNS:
        reason = f"{counted} columns, more than the {MAX_COLUMNS} vsbatch reads (the columns"
        raise _refuse(
            f"{reason} of its own outputs not counted); remove the columns you do not need", 1
        )
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        reason = "the header is a single column: the file seems to use ';' or tabs as"
        raise _refuse(reason + " separator; vsbatch reads comma-separated files", 1)


def _check_column_name(name: str, index: int, seen: dict[str, int]) -> None:
    if not name:
        raise _refuse(f"column {index} has no name in the header", 1)
    if name in seen:
        reason = f"duplicate column (columns {seen[name]} and {index})"
        raise _refuse(reason, 1, name)


def _refuse_unknown(unknown: list[str]) -> None:
    listed = ", ".join(_describe_unknown(name) for name in unknown[:_UNKNOWN_LISTED])
    if len(unknown) > _UNKNOWN_LISTED:
        listed += f" and {len(unknown) - _UNKNOWN_LISTED} more"
    reason = f"unknown column{'s' if len(unknown) > 1 else ''} {listed}"
    raise _refuse(reason + "; see docs/csv-format.md", 1, unknown[0])


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
    candidates = {c.lower(): c for c in (*FIXED_COLUMNS, *IGNORED_COLUMNS)}
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
    by_last_part = [c for c in FIXED_COLUMNS if c.rsplit(".", 1)[-1] == lowered]
    if by_last_part:
        return by_last_part[0]
    matches = difflib.get_close_matches(lowered, candidates, n=1, cutoff=0.75)
    return candidates[matches[0]] if matches else None
