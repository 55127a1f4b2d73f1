"""``output_stream``: export files written whole or not at all; a terminal never obeys data."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from vsbatch.errors import InputError
from vsbatch.outputs import output_stream


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestStdout:
    def test_terminal_sees_escapes_not_sequences(self) -> None:
        """Written to a terminal, control characters from data are shown as escapes."""
        terminal = _Terminal()

        with output_stream(None, terminal) as stream:
            stream.write("id,name\r\nvs_1,\x1b[2J\x9b\r\n")

        assert "id,name\nvs_1,\\x1b[2J\\x9b\n" == terminal.getvalue()

    def test_pipe_gets_the_bytes_as_they_are(self) -> None:
        """Written to a pipe or file, the export is unchanged (it must read back exactly)."""
        pipe = io.StringIO()

        with output_stream(None, pipe) as stream:
            stream.write("vs_1,\x1b[2J\r\n")

        assert "vs_1,\x1b[2J\r\n" == pipe.getvalue()


class TestFile:
    def test_file_replaced_when_complete(self, tmp_path: Path) -> None:
        """The file appears with the whole content and no temporary file is left."""
        target = tmp_path / "out.csv"
        target.write_text("old")

        with output_stream(target) as stream:
            stream.write("a\r\nb\r\n")

        assert ["out.csv"] == [p.name for p in tmp_path.iterdir()]
        assert b"a\r\nb\r\n" == target.read_bytes()

    def test_failure_half_way_keeps_the_old_file(self, tmp_path: Path) -> None:
        """An error while writing leaves the old file as it was and no temporary file."""
        target = tmp_path / "out.csv"
        target.write_text("old")

        with pytest.raises(RuntimeError), output_stream(target) as stream:
            stream.write("partial")
            raise RuntimeError("the ledger went away")

        assert ["out.csv"] == [p.name for p in tmp_path.iterdir()]
        assert "old" == target.read_text()

    def test_missing_directory_is_an_input_error(self, tmp_path: Path) -> None:
        """A target in a missing directory is refused with the path and the reason."""
        target = tmp_path / "nope" / "out.csv"

        with pytest.raises(InputError) as caught, output_stream(target):
            pass

        assert f"cannot write {target}: No such file or directory" in str(caught.value)
