"""``terminal_text``: untrusted text shown, never obeyed, by a terminal or by Rich."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from vsbatch.ops.logs import TextFormatter
from vsbatch.ops.terminal_text import safe, visible


class TestVisible:
    def test_escape_sequences_are_shown(self) -> None:
        """ESC, BEL, DEL and C1 controls are written as their escapes."""
        assert "\\x1b[2J\\x07\\x7f\\x9b" == visible("\x1b[2J\x07\x7f\x9b")

    def test_line_breaks_and_bidi_overrides_are_shown(self) -> None:
        """A value stays on one line and in reading order."""
        assert "a\\nb\\rc\\u202ed\\u2028" == visible("a\nb\rc\u202ed\u2028")

    def test_lines_mode_keeps_line_feeds_only(self) -> None:
        """With ``lines=True`` line feeds stay, other controls are still shown."""
        assert "one\ntwo\\x1b" == visible("one\ntwo\x1b", lines=True)

    def test_ordinary_text_is_unchanged(self) -> None:
        """Letters, accents, emoji and brackets pass as they are."""
        assert "Zoë [x] 🎉 ok" == visible("Zoë [x] 🎉 ok")


class TestSafe:
    def test_markup_prints_literally(self) -> None:
        """Text that looks like markup is printed as written, without a MarkupError."""
        console = Console(file=io.StringIO(), width=200, emoji=False)
        text = safe("[/x] [red]r[/red] end\\")

        console.print(f"[bold]{text}[/bold]")

        assert "[/x] [red]r[/red] end\\\n" == console.file.getvalue()  # type: ignore[attr-defined]

    def test_controls_are_shown_and_markup_escaped(self) -> None:
        """Both protections apply."""
        assert "\\[/x]\\x1b" == safe("[/x]\x1b")


class TestLogLines:
    def test_text_log_line_shows_escapes(self) -> None:
        """A readable log line carrying data shows its escape sequences instead of sending them."""
        record = logging.LogRecord(
            "vsbatch.x", logging.WARNING, "f", 1, "row %s", ("\x1b[2J",), None
        )

        line = TextFormatter().format(record)

        assert line.endswith("row \\x1b[2J")
