"""Where reports and exports go: a file written whole or not at all, or standard output.

An output file is written to a temporary file beside it and renamed over it once complete,
so a failure half way (a full disk, a broken pipe to Redis) leaves neither a partial nor an
empty file, and an existing file at the target stays as it was (a replaced file keeps its
permissions; a new one is ``0600``). A symlink is followed: its target is replaced, the link
stays. A path that is not a regular file (``/dev/stdout``, a FIFO, a device) is opened and
written directly, never replaced; ``-`` is standard output. Standard output that is a
terminal shows control characters from the data as escapes (see ``terminal_text``).
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO, cast

from rich.console import Console

from vsbatch.errors import InputError
from vsbatch.ops.terminal_text import visible

__all__ = ["PipeConsole", "output_stream"]


@contextlib.contextmanager
def output_stream(path: Path | None, stdout: TextIO | None = None) -> Iterator[TextIO]:
    """A text stream (``newline=""``) for an export: the file at ``path``, or stdout.

    Args:
        path: The file to (re)place; None writes to ``stdout``.
        stdout: The standard output to use (default ``sys.stdout``).

    Raises:
        InputError: The file cannot be created or written (the reason, with the path).
    """
    if path is None or str(path) == "-":
        out = stdout if stdout is not None else sys.stdout
        yield cast(TextIO, _TerminalText(out)) if _is_terminal(out) else out
        return
    mode = _mode(path)  # stat follows links: /dev/stdout -> /proc/self/fd/1 -> a pipe
    if mode is not None and not stat.S_ISREG(mode):
        with _direct(path) as stream:
            yield stream
        return
    target = Path(os.path.realpath(path))  # a symlink's target is what gets replaced
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        if mode is not None:
            os.chmod(temp, stat.S_IMODE(mode))
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with open(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
        os.replace(temp, target)
    except OSError as exc:
        _remove(temp)
        raise _cannot_write(path, exc) from None
    except BaseException:
        _remove(temp)
        raise


def _mode(path: Path) -> int | None:
    """The file type and permissions at ``path`` (followed), or None when nothing is there."""
    try:
        return path.stat().st_mode
    except OSError:
        return None


@contextlib.contextmanager
def _direct(path: Path) -> Iterator[TextIO]:
    """A device, FIFO or other non-regular file, written in place (there is nothing to swap)."""
    try:
        with open(path, "w", encoding="utf-8", newline="") as stream:
            yield stream
    except BrokenPipeError:
        raise  # the reader left: the CLI ends quietly, as Unix tools do
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"cannot write {path}: {reason}") from None


def _cannot_write(path: Path, exc: OSError) -> InputError:
    reason = exc.strerror or type(exc).__name__
    return InputError(f"cannot write {path}: {reason}; nothing was written there")


def _remove(temp: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(temp)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False


class _TerminalText(io.TextIOBase):
    """Writes to a terminal with control characters shown as escapes (line ends kept)."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(visible(text.replace("\r\n", "\n"), lines=True))
        return len(text)

    def flush(self) -> None:
        self._inner.flush()


class PipeConsole(Console):
    """A Rich console whose broken pipe is a ``BrokenPipeError`` for the CLI to handle.

    Rich's default ends the process with exit code 1, the code for "some rows failed".
    """

    def on_broken_pipe(self) -> None:
        """Stop writing and let the caller end the command (exit 141, quietly)."""
        self.quiet = True
        raise BrokenPipeError
