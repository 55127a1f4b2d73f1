"""Untrusted text made safe for a terminal: what every human-readable output goes through.

Batch names, session ids, metadata, file names and Stripe's error messages come from data or
from the network. Printed as they are, ``[/x]`` is Rich markup (a ``MarkupError`` or a
forged style) and ``ESC [ 2 J`` is a terminal command. :func:`visible` shows every control
character as its Python escape (``\\x1b``) instead of sending it, and :func:`safe` also
escapes Rich markup, for text handed to ``Console.print`` or a Rich ``Table``.
"""

from __future__ import annotations

import re

__all__ = ["safe", "visible"]

# C0 and C1 controls, DEL, and the invisible characters that reorder or break lines
# (bidi marks, overrides and isolates, line and paragraph separators).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _shown(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def visible(text: object, *, lines: bool = False) -> str:
    """``str(text)`` with every control character written as its escape, never sent raw.

    Args:
        text: Anything; ``None`` becomes ``"None"`` as with ``str``.
        lines: Keep line feeds (a traceback, a multi-line report); otherwise they are
            shown as ``\\n`` too, so one value stays on one line.
    """
    value = str(text)
    if lines:
        return "\n".join(_UNSAFE.sub(_shown, line) for line in value.split("\n"))
    return _UNSAFE.sub(_shown, value)


def safe(text: object) -> str:
    """:func:`visible` text with Rich markup escaped: ``Console.print`` shows it literally."""
    # Here, not at the top: rich.markup imports rich.text, which ``vsbatch --help`` never needs.
    from rich.markup import escape

    return escape(visible(text))
