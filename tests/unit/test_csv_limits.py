"""The reader's size limits: columns, cells and rows are capped, and memory stays flat.

Each limit is far above what a real update file needs (Stripe caps metadata at 50 keys of
500 characters) and refuses the file with its row, its column when known, and the reason.
"""

from __future__ import annotations

import io
import tracemalloc

import pytest

from vsbatch.errors import CsvFileError
from vsbatch.intake import csv_format
from vsbatch.intake.csv_reader import read_updates

ID = "vs_1AAAAAAAAAAAAAAAAAAAAAAA"
MIB = 1024 * 1024


def _refusal(data: bytes) -> CsvFileError:
    with pytest.raises(CsvFileError) as caught:
        for _ in read_updates(io.BytesIO(data)):
            pass
    return caught.value


def _peak(data: bytes) -> tuple[int, CsvFileError | None]:
    """The peak memory (bytes) traced while reading ``data``, and the refusal if any."""
    tracemalloc.start()
    try:
        try:
            for _ in read_updates(io.BytesIO(data)):
                pass
            error = None
        except CsvFileError as exc:
            error = exc
        return tracemalloc.get_traced_memory()[1], error
    finally:
        tracemalloc.stop()


def _wide(columns: int) -> bytes:
    header = "id," + ",".join(f"metadata.k{n}" for n in range(columns))
    return f"{header}\n{ID}{',v' * columns}\n".encode()


class TestLimits:
    def test_the_caps(self) -> None:
        """The documented caps: 200 columns, 10,000-character cells, 1 MiB rows."""
        assert (200, 10_000, MIB) == (
            csv_format.MAX_COLUMNS,
            csv_format.MAX_FIELD_CHARS,
            csv_format.MAX_LINE_CHARS,
        )

    def test_200_columns_are_read(self) -> None:
        """A header of exactly 200 columns is accepted."""
        (row,) = list(read_updates(io.BytesIO(_wide(csv_format.MAX_COLUMNS - 1))))

        assert 2 == row.row

    def test_a_cell_at_the_limit_is_read(self) -> None:
        """A cell of exactly 10,000 characters is accepted (and judged by Stripe's rules)."""
        data = f"id,metadata.k\n{ID},{'v' * csv_format.MAX_FIELD_CHARS}\n".encode()

        (row,) = list(read_updates(io.BytesIO(data)))

        assert "metadata.k" == (row.error.column if row.error else None)

    def test_a_row_over_1_mib_across_lines_is_refused(self) -> None:
        """A row of many short quoted lines is refused once it passes 1 MiB, at its row."""
        cells = ',"\n"' * (MIB // 4 + 10)
        data = f"id,metadata.k\n{ID},x\n{ID}{cells}\n".encode()

        error = _refusal(data)

        expected = f"row 3: a row is longer than {MIB} characters (an unterminated quote?)"
        assert (expected, 3) == (str(error), error.row)

    def test_unknown_columns_are_listed_briefly(self) -> None:
        """A header of many unknown columns names the first five and counts the rest."""
        header = "id," + ",".join(f"c{n}" for n in range(150))

        error = _refusal(f"{header}\n{ID},x\n".encode())

        assert str(error).startswith("row 1, column c0: unknown columns 'c0', 'c1', 'c2', 'c3'")
        assert "and 145 more; see docs/csv-format.md" in str(error)


class TestMemoryStaysFlat:
    def test_60000_columns(self) -> None:
        """A 60,000-column file is refused at its header within 8 MiB of memory."""
        peak, error = _peak(_wide(60_000))

        assert error is not None and error.row == 1
        assert peak < 8 * MIB, f"{peak / MIB:.1f} MiB"

    def test_rows_of_many_cells(self) -> None:
        """Rows padded with half a million empty cells each are read within 24 MiB."""
        rows = "".join(f"{ID},document{',' * (MIB // 2)}\n" for _ in range(2))

        peak, error = _peak(f"id,type\n{rows}".encode())

        assert error is None
        assert peak < 24 * MIB, f"{peak / MIB:.1f} MiB"

    def test_one_row_over_many_lines(self) -> None:
        """A row spread over a million lines costs no more memory than the row cap allows."""
        cells = ',"a\n"' * 1_000_000

        peak, _ = _peak(f"id,metadata.k\n{ID}{cells}\n".encode())

        assert peak < 24 * MIB, f"{peak / MIB:.1f} MiB"
