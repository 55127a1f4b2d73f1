"""Where a field of a migrations file is: the line of a migration's field in the TOML text.

This module owns :class:`Locator`, which finds (best effort, 1-based) the line of a top-level
key, of a ``[[migration]]`` header and of a dotted field inside one migration, so that spec
errors name the line to fix.
"""

from __future__ import annotations

import re

__all__ = ["Locator"]


class Locator:
    """Finds the line of a migration's field in the TOML text (best effort, 1-based)."""

    _HEADER = re.compile(r"\s*\[\[\s*migration\s*\]\]")
    _ACTION = re.compile(r"\s*\[\[\s*migration\.action\s*\]\]")
    _SELECT = re.compile(r"\s*\[\s*migration\.select\s*\]")
    _TABLE = re.compile(r"\s*\[")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.starts = [i for i, line in enumerate(self.lines) if self._HEADER.match(line)]

    def top_level(self, key: str) -> int | None:
        """The line of a top-level key or table header."""
        pattern = re.compile(rf"\s*(\[+\s*)?\"?{re.escape(key)}\b")
        end = self.starts[0] if self.starts else len(self.lines)
        for i in range(end):
            if pattern.match(self.lines[i]):
                return i + 1
        for i, line in enumerate(self.lines):
            if re.match(rf"\s*\[+\s*{re.escape(key)}\b", line):
                return i + 1
        return None

    def block_start(self, index: int) -> int | None:
        """The line of the ``index``-th ``[[migration]]`` header."""
        return self.starts[index] + 1 if index < len(self.starts) else None

    def line_of(self, index: int, field: str) -> int | None:
        """The line of ``field`` (dotted, e.g. ``select.status``, ``action[1].from``)."""
        if index >= len(self.starts):
            return None
        lo = self.starts[index]
        hi = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.lines)
        head, _, rest = field.partition(".")
        match = re.fullmatch(r"action\[(\d+)\]", head)
        if match:
            headers = [i for i in range(lo, hi) if self._ACTION.match(self.lines[i])]
            n = int(match.group(1))
            if n < len(headers):
                return self._key_line(headers[n] + 1, hi, rest) or headers[n] + 1
            return self._key_line(lo + 1, hi, "action") or lo + 1
        if head == "select" and rest:
            for i in range(lo, hi):
                if self._SELECT.match(self.lines[i]):
                    return self._key_line(i + 1, hi, rest) or i + 1
            return self._key_line(lo + 1, hi, "select") or lo + 1
        return self._key_line(lo + 1, hi, head) or lo + 1

    def _key_line(self, lo: int, hi: int, key: str) -> int | None:
        if not key:
            return None
        pattern = re.compile(rf"\s*\"?{re.escape(key)}\"?\s*=")
        for i in range(lo, hi):
            if self._TABLE.match(self.lines[i]):
                return None
            if pattern.match(self.lines[i]):
                return i + 1
        return None
