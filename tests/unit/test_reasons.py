"""Row reasons and values as text: one wording for every report, no Python reprs."""

from __future__ import annotations

import pytest

from vsbatch.model.row import Outcome, RowRecord
from vsbatch.ops.reasons import reason, shown, why


def _record(outcome: Outcome, **fields: object) -> RowRecord:
    return RowRecord("b", 2, "vs_1", None, None, None, 1, outcome, **fields)  # type: ignore[arg-type]


class TestShown:
    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (None, "(unset)"),
            ({}, "(unset)"),
            ("gold", "gold"),
            (True, "true"),
            ({"a": "b"}, '{"a": "b"}'),
            (["passport", "id_card"], '["passport", "id_card"]'),
        ],
    )
    def test_values_read_as_text(self, value: object, text: str) -> None:
        """Nothing reads ``(unset)``, text as it is, data as JSON."""
        assert text == shown(value)


class TestReason:
    def test_failure_reason_is_its_code_then_its_error_class(self) -> None:
        """A failure's reason is its Stripe code, else its error class."""
        coded = _record(Outcome.FAILED, error_code="resource_missing", error_message="No such")
        bare = _record(Outcome.FAILED, error_type="APIConnectionError")

        assert ("resource_missing", "APIConnectionError") == (reason(coded), reason(bare))

    def test_skip_without_reason_reads_skipped(self) -> None:
        """A skipped row with no recorded reason never shows ``None``."""
        assert "skipped" == why(_record(Outcome.SKIPPED))
