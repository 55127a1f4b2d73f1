"""The reader's fast path gives exactly the checked path's params, or steps aside."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from vsbatch.intake.csv_cells import RowProblem, update_from_cells
from vsbatch.intake.csv_format import FIXED_COLUMNS
from vsbatch.intake.fast_cells import CellPlan

SID = "vs_1AAAAAAAAAAAAAAAAAAAAAAA"
UPDATE_COLUMNS = [c for c in FIXED_COLUMNS if c not in ("id", "stripe_account")]
COLUMNS = [*UPDATE_COLUMNS, "metadata.a", "metadata.b", "metadata.zz", "outcome", "reason"]
# Cells a user writes, the reader's special forms among them.
CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "true",
            "FALSE",
            " yes ",
            "0",
            "maybe",
            "document",
            " ID_NUMBER ",
            "passport",
            "passport|id_card",
            "passport||id_card",
            "passport|passport",
            "Driving_License | id_card",
            "!unset",
            " !unset ",
            "!!unset",
            "'!unset",
            "'=1+2",
            "' padded '",
            "''",
            "a@example.com",
            "+33 1 23 45 67 89",
            "x" * 500,
            "x" * 501,
            "e" * 801,
            "caf\u00e9",
            "\ud800",
        ]
    ),
    st.text(max_size=12),
)


def checked(names: list[str], cells: list[str]) -> dict[str, Any] | None:
    """The checked path's params for a row (None when it refuses the row)."""
    try:
        update = update_from_cells(SID, None, dict(zip(names, cells, strict=True)))
    except RowProblem:
        return None
    return update.to_params()


class TestCellPlan:
    @settings(max_examples=400, deadline=None)
    @given(
        st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=6, unique=True).flatmap(
            lambda names: st.tuples(
                st.just(["id", *names]),
                st.lists(CELLS, min_size=len(names), max_size=len(names)),
            )
        )
    )
    @example((["id", "options.document.require_matching_selfie", "metadata.a"], ["true", "r1"]))
    def test_fast_params_are_the_checked_params(
        self, header_and_cells: tuple[list[str], list[str]]
    ) -> None:
        """Where the fast path answers, its params equal the checked path's, key order too."""
        names, cells = header_and_cells
        row = [SID, *cells]

        fast = CellPlan(names).params(row)

        if fast is not None:
            assert json.dumps(checked(names, row)) == json.dumps(fast)

    def test_well_formed_rows_take_the_fast_path(self) -> None:
        """A row of plain values gets its params from the plan (no model built)."""
        names = ["id", "type", "metadata.b", "metadata.a", "options.document.allowed_types"]
        names += ["options.document.require_live_capture", "provided_details.email"]
        row = [SID, "Document", "2", "1", "passport|id_card", "yes", "a@example.com"]

        expected = {
            "metadata": {"a": "1", "b": "2"},
            "options": {
                "document": {"allowed_types": ["passport", "id_card"], "require_live_capture": True}
            },
            "provided_details": {"email": "a@example.com"},
            "type": "document",
        }
        assert json.dumps(expected) == json.dumps(CellPlan(names).params(row))

    def test_unusual_rows_take_the_checked_path(self) -> None:
        """An unset, a refused value or an empty update is left to the checked path."""
        names = ["id", "metadata.a", "options.document.require_id_number"]
        plan = CellPlan(names)

        assert [None, None, None] == [
            plan.params([SID, "!unset", "true"]),
            plan.params([SID, "1", "perhaps"]),
            plan.params([SID, " ", ""]),
        ]
