"""CSV files as a whole: the files the reader refuses, streaming a large file in bounded
memory, and the file's digest.
"""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.csv_helpers import ID1, read, refusal
from vsbatch.errors import CsvFileError
from vsbatch.intake.csv_reader import file_digest, read_updates


class TestFileRefusals:
    def test_line_too_long(self) -> None:
        """A physical line over 1 MiB is refused without reading it whole."""
        data = b"id,type\n" + b"x" * (1024 * 1024 + 10)

        error = refusal(data)

        assert ("row 2: a line is longer than 1048576 characters", 2) == (str(error), error.row)

    def test_field_limit_just_above_maximum(self) -> None:
        """A cell of exactly 10,000 characters is read (then Stripe's rules apply)."""
        (row,) = read(f"id,metadata.k\n{ID1},{'v' * 10_000}\n")

        assert row.error is not None
        assert "metadata.k" == row.error.column

    def test_bom_only_file(self) -> None:
        """A file holding only a byte order mark has no header row."""
        error = refusal(b"\xef\xbb\xbf")

        assert ("the file has no header row", None) == (str(error), error.row)

    def test_rows_before_a_late_error_were_yielded(self) -> None:
        """Rows before a late file error come out first, so callers must stage them."""
        data = f"id,type\n{ID1},document\n".encode() + b"vs_x,\x00\n"
        seen: list[int] = []

        with pytest.raises(CsvFileError):
            for row in read_updates(io.BytesIO(data)):
                seen.append(row.row)

        assert [2] == seen


class _GeneratedStream(io.RawIOBase):
    """A binary stream producing a CSV of ``rows`` rows on the fly, never held whole."""

    def __init__(self, rows: int) -> None:
        self._chunks = self._generate(rows)
        self._pending = memoryview(b"")

    @staticmethod
    def _generate(rows: int) -> Iterator[bytes]:
        yield b"id,metadata.n,options.document.require_matching_selfie\r\n"
        for start in range(0, rows, 1000):
            numbers = range(start, min(rows, start + 1000))
            yield b"".join(b"vs_%024d,%d,true\r\n" % (n, n) for n in numbers)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            self._pending = memoryview(next(self._chunks, b""))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _resident_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class TestStreaming:
    @pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
    def test_memory_does_not_grow_with_the_file(self) -> None:
        """Between row 10,000 and row 200,000 resident memory grows by less than 10 MB."""
        # Measured while the reader is still open: rows it held would still be alive.
        resident: dict[int, int] = {}
        valid = 0

        for row in read_updates(io.BufferedReader(_GeneratedStream(200_000))):
            valid += row.error is None
            if row.row in (10_001, 200_001):
                resident[row.row] = _resident_bytes()

        assert 200_000 == valid
        assert resident[200_001] - resident[10_001] < 10_000_000

    def test_peak_allocation_is_small(self) -> None:
        """Reading 20,000 rows allocates under 1 MB at peak (tracemalloc is slow at more)."""
        tracemalloc.start()
        try:
            count = sum(1 for _ in read_updates(io.BufferedReader(_GeneratedStream(20_000))))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        assert 20_000 == count
        assert peak < 1_000_000

    def test_first_row_before_end_of_file(self) -> None:
        """The first row comes out before the stream is read to its end."""
        stream = io.BufferedReader(_GeneratedStream(100_000))

        first = next(read_updates(stream))

        assert 2 == first.row
        assert b"" != stream.read(1)


class TestFileDigest:
    def test_sha256_of_the_bytes(self, tmp_path: Path) -> None:
        """The digest is the hex SHA-256 of the file's bytes."""
        path = tmp_path / "u.csv"
        path.write_bytes(b"id,type\r\n" * 100_000)

        assert hashlib.sha256(path.read_bytes()).hexdigest() == file_digest(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a CsvFileError."""
        with pytest.raises(CsvFileError):
            file_digest(tmp_path / "missing.csv")
