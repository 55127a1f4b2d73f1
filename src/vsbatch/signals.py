"""SIGTERM handled as Ctrl-C: the one helper for the long-running commands (``archive
--follow``, ``web``) that must stop cleanly when ``kill``, ``docker stop`` or systemd ends them.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

__all__ = ["sigterm_as_interrupt"]


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises KeyboardInterrupt as Ctrl-C does: context managers
    close (an embedded Redis the command started stops) and the command prints its interrupt
    line; SIGTERM's default action would kill it with no line and no cleanup."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
