"""``output_stream``: export files written whole or not at all; a terminal never obeys data."""

from __future__ import annotations

import io
import os
import stat
import threading
from pathlib import Path

import pytest

from vsbatch.cli.outputs import output_stream
from vsbatch.errors import InputError


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


def _read_fifo(fifo: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with open(fifo, "rb") as reader:
            into.append(reader.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


class TestThroughLinksAndDevices:
    def test_dash_is_standard_output(self) -> None:
        """``-o -`` writes to standard output, as no ``-o`` does."""
        pipe = io.StringIO()

        with output_stream(Path("-"), pipe) as stream:
            stream.write("vs_1\r\n")

        assert "vs_1\r\n" == pipe.getvalue()

    def test_symlink_to_a_file_updates_the_target_and_keeps_the_link(self, tmp_path: Path) -> None:
        """A symlink is followed: its target is replaced whole, the link stays a link."""
        target = tmp_path / "real.csv"
        target.write_text("old")
        link = tmp_path / "out.csv"
        link.symlink_to(target)

        with output_stream(link) as stream:
            stream.write("new\r\n")

        assert (True, target, b"new\r\n") == (
            link.is_symlink(),
            link.readlink(),
            target.read_bytes(),
        )
        assert {"out.csv", "real.csv"} == {p.name for p in tmp_path.iterdir()}

    def test_symlink_to_a_fifo_writes_into_it(self, tmp_path: Path) -> None:
        """A link to a FIFO (as /dev/stdout is) is written through, never replaced."""
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        link = tmp_path / "out"
        link.symlink_to(fifo)
        received: list[bytes] = []
        reader = _read_fifo(fifo, received)

        with output_stream(link) as stream:
            stream.write("vs_1\r\n")
        reader.join(timeout=30)

        assert ([b"vs_1\r\n"], True, True) == (
            received,
            link.is_symlink(),
            stat.S_ISFIFO(fifo.stat().st_mode),
        )

    def test_a_fifo_path_is_written_directly(self, tmp_path: Path) -> None:
        """A path that is not a regular file (a FIFO, a device) is opened and written as is."""
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        received: list[bytes] = []
        reader = _read_fifo(fifo, received)

        with output_stream(fifo) as stream:
            stream.write("vs_2\r\n")
        reader.join(timeout=30)

        assert ([b"vs_2\r\n"], True) == (received, stat.S_ISFIFO(fifo.stat().st_mode))

    def test_replaced_file_keeps_its_mode(self, tmp_path: Path) -> None:
        """A file that was already there keeps its permissions when its content is replaced."""
        target = tmp_path / "out.csv"
        target.write_text("old")
        target.chmod(0o644)

        with output_stream(target) as stream:
            stream.write("new")

        assert 0o644 == stat.S_IMODE(target.stat().st_mode)
