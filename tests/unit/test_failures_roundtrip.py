"""``vsbatch failures`` output read back by the CSV reader gives every update byte for byte.

Values are generated within Stripe's limits only (keys up to 40 characters without brackets,
values up to 500, emails up to 800): no filtering of spaces, quotes, ``!unset`` look-alikes,
formula starts or control characters, which are what the writer must escape.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.strategies import DOCUMENT_OPTIONS
from vsbatch.errors import InvalidUpdate
from vsbatch.intake.csv_reader import read_updates
from vsbatch.intake.csv_writers import write_failures
from vsbatch.model.row import Outcome, RowRecord
from vsbatch.model.update import parse_update

ID = "vs_1AAAAAAAAAAAAAAAAAAAAAAA"
# Text a user can hold in a cell: anything but NUL (refused in files) and lone surrogates.
_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
# Cells the reader interprets: markers, quotes, formula starts, surrounding whitespace.
_TRICKY = [
    " !unset ",
    " !unset",
    "!unset ",
    "!unset",
    "!!unset",
    "\t!unset",
    "'",
    "''",
    "' ",
    "'=x",
    "' x",
    "=1+2",
    "+1",
    "-",
    "@",
    " ",
    "\t",
    "\n",
    " a ",
    "a ",
    "'a ",
    "\r=x",
]


def _pad(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from(["", " ", "'", "\t", "  ", "''"]).map(lambda p: p + text)


_tricky = st.one_of(st.sampled_from(_TRICKY), st.sampled_from(_TRICKY).flatmap(_pad))
_keys = st.one_of(st.text(_CHARS, min_size=1, max_size=40), _tricky)
_values = st.one_of(st.just(""), _tricky, st.text(_CHARS, max_size=500))
_details = st.one_of(_tricky, st.text(_CHARS, min_size=1, max_size=80))
_document = DOCUMENT_OPTIONS
_updates = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["document", "id_number"]),
        "metadata": st.one_of(st.just(""), st.dictionaries(_keys, _values, max_size=8)),
        "options": st.fixed_dictionaries({"document": st.one_of(st.just(""), _document)}),
        "provided_details": st.fixed_dictionaries(
            {}, optional={"email": _details, "phone": _details}
        ),
    },
)


def _valid(data: dict[str, Any]) -> dict[str, Any] | None:
    """The canonical params of an update Stripe would accept, or None."""
    try:
        return parse_update(data).to_params()
    except InvalidUpdate:
        return None


def _round_trip(params: dict[str, Any]) -> dict[str, Any] | None:
    """Write one failed row with these params as a failures CSV; read its update back."""
    record = RowRecord(
        batch_id="b1",
        row=2,
        session_id=ID,
        account=None,
        params=params,
        idempotency_key="k",
        seq=1,
        outcome=Outcome.FAILED,
        error_message="' !unset =boom",
    )
    out = io.StringIO(newline="")
    write_failures([record], out)
    (row,) = list(read_updates(io.BytesIO(out.getvalue().encode("utf-8"))))
    assert row.error is None, row.error
    return row.params


class TestFailuresRoundTrip:
    @settings(max_examples=400, deadline=None)
    @given(data=_updates)
    @example(data={"metadata": {"k": " !unset "}})
    @example(data={"metadata": {"k": "  "}})
    @example(data={"provided_details": {"email": " a@example.com "}})
    @example(data={"provided_details": {"phone": "!unset"}})
    def test_every_update_reads_back_unchanged(self, data: dict[str, Any]) -> None:
        """A failures file resubmitted as it is carries exactly the update that failed."""
        params = _valid(data)
        if params is None:
            return

        assert params == _round_trip(params)

    @pytest.mark.parametrize("value", _TRICKY)
    def test_tricky_metadata_value(self, value: str) -> None:
        """Each value the reader would interpret comes back as written."""
        params = {"metadata": {"k": value}}

        assert params == _round_trip(params)

    def test_key_with_trailing_space_is_refused(self) -> None:
        """A metadata key with surrounding spaces is refused: CSV headers are trimmed."""
        with pytest.raises(InvalidUpdate, match="start or end with"):
            parse_update({"metadata": {"plan ": "gold"}})
