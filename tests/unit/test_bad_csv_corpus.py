"""The bad-CSV corpus: every file in tests/data/bad_csv with its exact expected result.

Files are made by ``tests/data/bad_csv/_make_corpus.py`` and committed. A file is either
refused (message, row, column, and how many rows came out before the refusal) or parsed
into these rows: ``(row, session id, params)`` for a valid row, ``(row, session id,
RowError)`` for a bad one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vsbatch.errors import CsvFileError
from vsbatch.intake.csv_cells import RowError
from vsbatch.intake.csv_reader import read_updates

CORPUS = Path(__file__).parent.parent / "data" / "bad_csv"
ID1 = "vs_1AAAAAAAAAAAAAAAAAAAAAAA"
ID2 = "vs_2BBBBBBBBBBBBBBBBBBBBBBB"
ID3 = "vs_3CCCCCCCCCCCCCCCCCCCCCCC"
ID4 = "vs_4DDDDDDDDDDDDDDDDDDDDDDD"
SAVE_UTF8 = "save it as CSV UTF-8"
DOCS = "see docs/csv-format.md"
NOT_ID = "Not a VerificationSession id: {!r} (expected vs_ and letters/digits)."
NOT_ACCT = "Not a Stripe account id: {!r} (expected acct_ and letters/digits)."
NOT_BOOL = "Expected true or false (or yes/no, 1/0), got {!r}."
NOTHING = RowError(None, "Nothing to update: every update column is empty.")
LIVE = "options.document.require_live_capture"
TYPES = "options.document.allowed_types"


@dataclass(frozen=True)
class Refused:
    """The whole file is refused with this CsvFileError."""

    message: str
    row: int | None = None
    column: str | None = None
    rows_before: int = 0  # rows yielded before the refusal (callers discard them)


Parsed = list[tuple[int, str, "dict[str, Any] | RowError"]]

REFUSED: dict[str, Refused] = {
    "empty.csv": Refused("the file is empty (0 bytes)"),
    "header_only.csv": Refused("no data rows: the file has a header but no rows to apply"),
    "header_then_blank_rows.csv": Refused(
        "no data rows: the file has a header but no rows to apply"
    ),
    "blank_first_row.csv": Refused(
        "row 1: the header row is empty; row 1 must name the columns", row=1
    ),
    "semicolon_separated.csv": Refused(
        "row 1: the header is a single column: the file seems to use ';' or tabs as separator;"
        " vsbatch reads comma-separated files",
        row=1,
    ),
    "no_id_column.csv": Refused(
        "row 1: no id column: the header must name the session column 'id'", row=1
    ),
    "session_column.csv": Refused(
        f"row 1, column session_id: unknown column 'session_id' (did you mean 'id'?); {DOCS}",
        row=1,
        column="session_id",
    ),
    "unknown_columns.csv": Refused(
        f"row 1, column colour: unknown columns 'colour', 'note'; {DOCS}", row=1, column="colour"
    ),
    "typo_metadata.csv": Refused(
        "row 1, column metdata.plan: unknown column 'metdata.plan'"
        f" (did you mean 'metadata.plan'?); {DOCS}",
        row=1,
        column="metdata.plan",
    ),
    "typo_option.csv": Refused(
        "row 1, column options.document.require_selfie: unknown column"
        " 'options.document.require_selfie'"
        f" (did you mean 'options.document.require_matching_selfie'?); {DOCS}",
        row=1,
        column="options.document.require_selfie",
    ),
    "typo_case.csv": Refused(
        f"row 1, column ID: unknown column 'ID' (did you mean 'id'?); {DOCS}", row=1, column="ID"
    ),
    "typo_last_part.csv": Refused(
        "row 1, column email: unknown column 'email'"
        f" (did you mean 'provided_details.email'?); {DOCS}",
        row=1,
        column="email",
    ),
    "duplicate_header.csv": Refused(
        "row 1, column type: duplicate column (columns 2 and 4)", row=1, column="type"
    ),
    "duplicate_after_trim.csv": Refused(
        "row 1, column metadata.plan: duplicate column (columns 2 and 3)",
        row=1,
        column="metadata.plan",
    ),
    "empty_header_cell.csv": Refused("row 1: column 2 has no name in the header", row=1),
    "metadata_empty_key.csv": Refused(
        "row 1, column metadata.: empty metadata key (write metadata.<key>)",
        row=1,
        column="metadata.",
    ),
    "metadata_key_too_long.csv": Refused(
        f"row 1, column metadata.{'k' * 41}: Invalid key: {'k' * 41}"
        " must be a string of at most 40 characters.",
        row=1,
        column=f"metadata.{'k' * 41}",
    ),
    "metadata_key_brackets.csv": Refused(
        "row 1, column metadata.a[b]: Invalid key: a[b] must not contain '[' or ']'.",
        row=1,
        column="metadata.a[b]",
    ),
    "too_many_cells.csv": Refused(
        "row 2: 3 cells but the header has 2 columns (an unquoted comma in a value?)", row=2
    ),
    "latin1.csv": Refused(
        "row 2: not valid UTF-8 (byte 0xE9 after 'AAAAAAAAAAAAAAAA,Jos');"
        " save the file as CSV UTF-8",
        row=2,
    ),
    "latin1_late.csv": Refused(
        "row 5: not valid UTF-8 (byte 0xEB after 'DDDDDDDDDDDDDDDDD,Zo');"
        " save the file as CSV UTF-8",
        row=5,
        rows_before=3,
    ),
    "utf16_bom.csv": Refused(f"the file is UTF-16 encoded; {SAVE_UTF8}"),
    "utf16_no_bom.csv": Refused(
        f"row 1: the file contains NUL bytes: binary content, or UTF-16 without a BOM; {SAVE_UTF8}",
        row=1,
    ),
    "png_image.csv": Refused(
        "row 1: not valid UTF-8 (byte 0x89 at the start of a line); save the file as CSV UTF-8",
        row=1,
    ),
    "xlsx_workbook.csv": Refused(
        f"the file is a ZIP archive (an .xlsx workbook?), not CSV; {SAVE_UTF8}"
    ),
    "xls_workbook.csv": Refused(
        f"the file is an Excel 97-2003 workbook (.xls), not CSV; {SAVE_UTF8}"
    ),
    "nul_byte.csv": Refused(
        f"row 3: the file contains NUL bytes: binary content, or UTF-16 without a BOM; {SAVE_UTF8}",
        row=3,
        rows_before=1,
    ),
    "unterminated_quote.csv": Refused(
        'row 2: a quoted cell is never closed (unterminated ")', row=2
    ),
    "text_after_quote.csv": Refused(
        'row 3: text follows a closing quote (double a quote inside a cell: "")',
        row=3,
        rows_before=1,
    ),
    "huge_field.csv": Refused(
        "row 2, column metadata.note: a cell is larger than 10000 characters",
        row=2,
        column="metadata.note",
    ),
    "cell_over_limit.csv": Refused(
        "row 3, column metadata.note: a cell is larger than 10000 characters",
        row=3,
        column="metadata.note",
        rows_before=1,
    ),
    "too_many_columns.csv": Refused(
        "row 1: 201 columns, more than the 200 vsbatch reads (the columns of its own outputs"
        " not counted); remove the columns you do not need",
        row=1,
    ),
    "huge_unterminated_quote.csv": Refused(
        "row 2: a cell is larger than 10000 characters (unterminated quote?)", row=2
    ),
}

PARSED: dict[str, Parsed] = {
    "bad_ids.csv": [
        (2, "vs-123", RowError("id", NOT_ID.format("vs-123"))),
        (3, "cus_123", RowError("id", NOT_ID.format("cus_123"))),
        (4, "", RowError("id", "Missing session id.")),
        (5, "vs_ab c", RowError("id", NOT_ID.format("vs_ab c"))),
    ],
    "bad_accounts.csv": [
        (2, ID1, RowError("stripe_account", NOT_ACCT.format("acct-1"))),
        (3, ID2, RowError("stripe_account", NOT_ACCT.format("123"))),
    ],
    "bad_booleans.csv": [
        (2, ID1, RowError(LIVE, NOT_BOOL.format("maybe"))),
        (3, ID2, RowError(LIVE, NOT_BOOL.format("2"))),
        (4, ID3, {"options": {"document": {"require_live_capture": True}}}),
    ],
    "bad_enums.csv": [
        (
            2,
            ID1,
            RowError("type", "'passport' is not a verification type; use document or id_number."),
        ),
        (
            3,
            ID2,
            RowError(
                TYPES, "'visa' is not a document type; use driving_license, id_card or passport."
            ),
        ),
        (4, ID3, RowError(TYPES, "Empty item in the list (separate items with |).")),
    ],
    "wrong_types.csv": [
        (2, ID1, RowError("type", "'1' is not a verification type; use document or id_number.")),
        (
            3,
            ID2,
            RowError(
                TYPES, "'true' is not a document type; use driving_license, id_card or passport."
            ),
        ),
        (4, ID3, RowError("options.document.require_id_number", NOT_BOOL.format("passport"))),
    ],
    "empty_update.csv": [(2, ID1, NOTHING), (3, ID2, NOTHING)],
    "metadata_51_keys.csv": [
        (2, ID1, RowError("metadata", "Metadata can have up to 50 keys, but you've set 51."))
    ],
    "metadata_value_too_long.csv": [
        (
            2,
            ID1,
            RowError(
                "metadata.note",
                "Metadata values can be up to 500 characters, but this one has 501.",
            ),
        )
    ],
    "email_too_long.csv": [
        (
            2,
            ID1,
            RowError(
                "provided_details.email",
                "email can be up to 800 characters, but this one has 801.",
            ),
        )
    ],
    "unset_misuse.csv": [
        (
            2,
            ID1,
            RowError("type", "!unset is only allowed in metadata and options.document columns."),
        ),
        (
            3,
            ID2,
            RowError(
                "metadata",
                "This column only takes !unset; set fields in metadata.<name> columns.",
            ),
        ),
        (
            4,
            ID3,
            RowError(
                "metadata",
                "Unsetting all metadata conflicts with setting metadata.<key> in the same row.",
            ),
        ),
        (
            5,
            ID4,
            RowError(
                "options.document",
                "Unsetting options.document conflicts with setting options.document.<option>"
                " in the same row.",
            ),
        ),
    ],
    "duplicate_ids.csv": [
        (2, ID1, {"metadata": {"plan": "gold"}}),
        (3, ID1, {"metadata": {"plan": "silver"}}),
    ],
    "bom_crlf.csv": [(2, ID1, {"type": "id_number"})],
    "cr_only.csv": [(2, ID1, {"type": "id_number"}), (3, ID2, {"type": "document"})],
    "short_and_padded_rows.csv": [
        (2, ID1, {"type": "id_number"}),
        (3, ID2, {"metadata": {"plan": "gold"}}),
    ],
    "formula_cells.csv": [
        (
            2,
            ID1,
            {
                "metadata": {"a": "=1+2", "b": "@SUM(A1)", "c": "-5"},
                "provided_details": {"phone": "+15555550100"},
            },
        ),
        (
            3,
            ID2,
            {
                "metadata": {"a": "=kept", "b": "'=one quote gone", "c": "'plain"},
                "provided_details": {"phone": "+15555550101"},
            },
        ),
    ],
    "failures_resubmit.csv": [(2, ID1, {"metadata": {"plan": "gold"}})],
    "many_columns_with_outputs.csv": [
        (2, ID1, RowError("metadata", "Metadata can have up to 50 keys, but you've set 199."))
    ],
    "quoted_newlines.csv": [
        (
            2,
            ID1,
            {"metadata": {"note": "line one\r\nline two\nline three"}, "type": "document"},
        ),
        (3, ID2, {"type": "id_number"}),
    ],
}


def _outcome(path: Path) -> Parsed:
    return [
        (row.row, row.session_id, row.error if row.error is not None else row.params or {})
        for row in read_updates(path)
    ]


class TestCorpus:
    def test_every_file_has_an_expected_result(self) -> None:
        """Each corpus file appears in exactly one table, and each table entry has a file."""
        files = {path.name for path in CORPUS.glob("*.csv")}

        assert files == set(REFUSED) | set(PARSED)
        assert not set(REFUSED) & set(PARSED)

    def test_corpus_is_large_enough(self) -> None:
        """The corpus holds at least thirty files."""
        assert len(REFUSED) + len(PARSED) >= 30

    @pytest.mark.parametrize("name", sorted(REFUSED))
    def test_refused_file(self, name: str) -> None:
        """A malformed file is refused with its exact message, row and column."""
        expected = REFUSED[name]
        yielded = 0

        with pytest.raises(CsvFileError) as caught:
            for _ in read_updates(CORPUS / name):
                yielded += 1

        actual = Refused(str(caught.value), caught.value.row, caught.value.column, yielded)
        assert expected == actual

    @pytest.mark.parametrize("name", sorted(PARSED))
    def test_parsed_file(self, name: str) -> None:
        """A well-formed file yields exactly these rows, errors and updates."""
        assert PARSED[name] == _outcome(CORPUS / name)
