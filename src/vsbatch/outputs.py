"""Where reports and exports go: a file written whole or not at all, or standard output.

An output file is written to a temporary file beside it and renamed over it once complete,
so a failure half way (a full disk, a broken pipe to Redis) leaves neither a partial nor an
empty file, and an existing file at the target stays as it was. Standard output that is a
terminal shows control characters from the data as escapes (see ``terminal_text``).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO, cast

from vsbatch.errors import InputError
from vsbatch.terminal_text import visible

__all__ = ["output_stream"]


@contextlib.contextmanager
def output_stream(path: Path | None, stdout: TextIO | None = None) -> Iterator[TextIO]:
    """A text stream (``newline=""``) for an export: the file at ``path``, or stdout.

    Args:
        path: The file to (re)place; None writes to ``stdout``.
        stdout: The standard output to use (default ``sys.stdout``).

    Raises:
        InputError: The file cannot be created or written (the reason, with the path).
    """
    if path is None:
        out = stdout if stdout is not None else sys.stdout
        yield cast(TextIO, _TerminalText(out)) if _is_terminal(out) else out
        return
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with open(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
        os.replace(temp, path)
    except OSError as exc:
        _remove(temp)
        raise _cannot_write(path, exc) from None
    except BaseException:
        _remove(temp)
        raise


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
