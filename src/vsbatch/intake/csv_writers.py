"""The CSV writers: the reconciliation report (a line per row) and the failures file (the input
format plus error columns, re-submittable as it is)."""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import TextIO

from vsbatch.intake.csv_cells import columns_from_params
from vsbatch.intake.csv_format import (
    ACCOUNT_COLUMN,
    FAILURE_COLUMNS,
    FIXED_COLUMNS,
    FORMULA_START,
    ID_COLUMN,
    REPORT_COLUMNS,
    UPDATE_COLUMNS,
    neutralise,
)
from vsbatch.model.row import RowRecord
from vsbatch.ops.reasons import reason as row_reason


def _column_order(name: str) -> tuple[int, str]:
    if name.startswith("metadata."):
        return (FIXED_COLUMNS.index("metadata"), name)
    return (FIXED_COLUMNS.index(name), "")


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
            k: f"'{v}" if v[:1] and v[0] in FORMULA_START else v
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
