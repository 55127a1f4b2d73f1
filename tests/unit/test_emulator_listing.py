"""How ``vsbatch emulator sessions`` renders the admin route's session list (pure)."""

from __future__ import annotations

from vsbatch.emulator.cli import format_sessions, metadata_summary


class TestMetadataSummary:
    def test_empty_metadata_is_a_dash(self) -> None:
        """A session without metadata shows ``-``."""
        assert "-" == metadata_summary({"metadata": {}})

    def test_long_metadata_is_cut_with_its_key_count(self) -> None:
        """Metadata longer than the width is cut and says how many keys it has."""
        metadata = {f"key{i}": "x" * 10 for i in range(5)}

        actual = metadata_summary({"metadata": metadata}, width=40)

        assert "key0=xxxxxxxxxx,key1=xxxxxxx...(5 keys)" == actual

    def test_a_redacted_session_says_so(self) -> None:
        """A redacted session shows ``(redacted)`` instead of its (erased) metadata."""
        assert "(redacted)" == metadata_summary({"metadata": {}, "redacted": True})


class TestFormatSessions:
    def test_control_characters_are_shown_escaped(self) -> None:
        """A metadata value with an escape sequence is printed as text, never sent raw."""
        session = {"id": "vs_1", "account": None, "status": "requires_input"}
        session["metadata"] = {"k": "\x1b[2J"}

        lines = format_sessions([session])

        assert "vs_1  -        requires_input  k=\\x1b[2J" == lines[1]
