"""Helpers the ``vsbatch web`` end-to-end tests share: reading the first lines a server process
prints (its URL and token) and polling until a condition holds.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any


def _lines(proc: subprocess.Popen[str], count: int, timeout: float = 30) -> list[str]:
    """The first ``count`` lines of the process's stdout, or fail after ``timeout``."""
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        return [lines.get(timeout=timeout).rstrip("\n") for _ in range(count)]
    except queue.Empty:
        proc.kill()
        raise AssertionError(
            f"vsbatch web printed no URL and token: {proc.communicate()}"
        ) from None


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` every 50 ms until it returns something true, or fail."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {timeout}s: {what}")
        time.sleep(0.05)
    return found
