"""CSV in: the reader's rules for columns, rows and cells, row numbers, row errors, parsed rows
and the example file.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.unit.csv_helpers import ID1, ID2, params_of, read, refusal
from vsbatch.errors import CsvFileError
from vsbatch.intake.csv_cells import RowError
from vsbatch.intake.csv_format import FAILURE_COLUMNS
from vsbatch.intake.csv_reader import read_updates
from vsbatch.model.row import NewRow


class TestReadingBasics:
    def test_reads_a_path(self, tmp_path: Path) -> None:
        """A path is opened, read and closed."""
        path = tmp_path / "u.csv"
        path.write_text(f"id,type\n{ID1},id_number\n", encoding="utf-8")

        assert [{"type": "id_number"}] == [row.params for row in read_updates(path)]

    def test_stream_left_open(self) -> None:
        """A caller's binary stream is not closed by the reader."""
        stream = io.BytesIO(f"id,type\n{ID1},id_number\n".encode())

        list(read_updates(stream))

        assert not stream.closed

    def test_missing_file_is_refused(self, tmp_path: Path) -> None:
        """A missing file is a CsvFileError, not an OSError."""
        with pytest.raises(CsvFileError, match=r"cannot read .*No such file"):
            list(read_updates(tmp_path / "missing.csv"))

    def test_row_fields(self) -> None:
        """A parsed row carries its number, session, account, update and raw cells."""
        text = f"id,stripe_account,type,row\n{ID1}, acct_123 ,id_number,7\n"

        (row,) = read(text)

        assert 2 == row.row
        assert ID1 == row.session_id
        assert "acct_123" == row.account
        assert {"type": "id_number"} == row.params
        assert row.error is None
        expected = {"id": ID1, "stripe_account": " acct_123 ", "type": "id_number", "row": "7"}
        assert expected == row.raw

    def test_empty_account_is_none(self) -> None:
        """An empty stripe_account cell means the platform account."""
        (row,) = read(f"id,stripe_account,type\n{ID1},,document\n")

        assert row.account is None

    def test_header_names_are_trimmed(self) -> None:
        """Spaces around column names are ignored."""
        assert [{"type": "document"}] == params_of(f" id , type \n{ID1},document\n")

    def test_bom_crlf_accepted(self) -> None:
        """A UTF-8 BOM and CRLF line ends are accepted."""
        data = b"\xef\xbb\xbfid,type\r\n" + f"{ID1},document\r\n".encode()

        assert [{"type": "document"}] == [row.params for row in read(data)]

    def test_last_line_without_newline(self) -> None:
        """The last row needs no line end."""
        assert [{"type": "document"}] == params_of(f"id,type\n{ID1},document")


class TestRowNumbers:
    def test_quoted_newlines_count_as_one_row(self) -> None:
        """A record spanning several physical lines is one spreadsheet row."""
        text = f'id,metadata.note\n{ID1},"a\nb\r\nc"\n{ID2},x\n'

        assert [2, 3] == [row.row for row in read(text)]

    def test_blank_rows_are_skipped_but_counted(self) -> None:
        """Blank lines and rows of empty cells yield nothing but keep spreadsheet numbering."""
        text = f"id,type\n\n{ID1},document\n , \n{ID2},document\n"

        assert [3, 5] == [row.row for row in read(text)]

    def test_refusal_names_the_row_after_a_multiline_record(self) -> None:
        """A decoding error after a multi-line record names the record's spreadsheet row."""
        data = f'id,metadata.n\n{ID1},"x\ny\nz"\n'.encode() + b"vs_2,\xff\n"

        assert 3 == refusal(data).row


class TestCellValues:
    def test_metadata_value_kept_as_given(self) -> None:
        """Metadata values keep their surrounding spaces."""
        assert [{"metadata": {"k": "  padded "}}] == params_of(f"id,metadata.k\n{ID1},  padded \n")

    def test_whitespace_only_cell_is_empty(self) -> None:
        """A cell of spaces leaves the field unchanged."""
        text = f"id,type,metadata.k\n{ID1},   ,  \t\n"

        assert [RowError(None, "Nothing to update: every update column is empty.")] == params_of(
            text
        )

    def test_trimmed_columns(self) -> None:
        """Ids, enums, booleans, list items and provided details are trimmed."""
        text = (
            "id,type,options.document.allowed_types,options.document.require_id_number,"
            "provided_details.email,provided_details.phone\n"
            f" {ID1} , document , passport | id_card ,  no , a@example.com , +15555550100 \n"
        )
        expected = {
            "type": "document",
            "options": {
                "document": {"allowed_types": ["passport", "id_card"], "require_id_number": False}
            },
            "provided_details": {"email": "a@example.com", "phone": "+15555550100"},
        }

        (row,) = read(text)

        assert (ID1, expected) == (row.session_id, row.params)

    def test_enums_are_case_insensitive(self) -> None:
        """Enum values are lower-cased before they are checked."""
        text = f"id,type,options.document.allowed_types\n{ID1},ID_Number,Passport|ID_CARD\n"
        expected = {
            "type": "id_number",
            "options": {"document": {"allowed_types": ["passport", "id_card"]}},
        }

        assert [expected] == params_of(text)

    @pytest.mark.parametrize(
        ("cell", "value"),
        [
            ("true", True),
            ("TRUE", True),
            ("Yes", True),
            ("1", True),
            ("false", False),
            ("No", False),
            ("0", False),
        ],
    )
    def test_boolean_spellings(self, cell: str, value: bool) -> None:
        """Booleans accept true/false, yes/no and 1/0 in any case."""
        text = f"id,options.document.require_matching_selfie\n{ID1},{cell}\n"

        assert [{"options": {"document": {"require_matching_selfie": value}}}] == params_of(text)

    def test_unset_metadata_key(self) -> None:
        """!unset in a metadata.<key> cell unsets that key."""
        text = f"id,metadata.old,metadata.new\n{ID1}, !unset ,v\n"

        assert [{"metadata": {"new": "v", "old": ""}}] == params_of(text)

    def test_unset_all_metadata(self) -> None:
        """!unset in the metadata column unsets every key."""
        assert [{"metadata": ""}] == params_of(f"id,metadata\n{ID1},!unset\n")

    def test_unset_all_covers_unset_keys(self) -> None:
        """Unsetting all metadata and some keys in one row is just unsetting all."""
        assert [{"metadata": ""}] == params_of(f"id,metadata,metadata.k\n{ID1},!unset,!unset\n")

    def test_unset_document_options(self) -> None:
        """!unset in the options.document column unsets the document options."""
        assert [{"options": {"document": ""}}] == params_of(f"id,options.document\n{ID1},!unset\n")

    def test_escaped_marker_is_literal(self) -> None:
        """!!unset sets the literal text !unset (one ! removed)."""
        text = f"id,metadata.a,metadata.b\n{ID1},!!unset,!!!unset\n"

        assert [{"metadata": {"a": "!unset", "b": "!!unset"}}] == params_of(text)

    def test_other_bang_values_are_plain(self) -> None:
        """A value that merely starts with ! is kept as it is."""
        assert [{"metadata": {"a": "!important"}}] == params_of(
            f"id,metadata.a\n{ID1},!important\n"
        )

    def test_neutralised_phone_round_trips(self) -> None:
        """One ' before a formula character is removed, so '+1555... reads as +1555..."""
        text = f"id,provided_details.phone\n{ID1},'+15555550100\n"

        assert [{"provided_details": {"phone": "+15555550100"}}] == params_of(text)

    def test_ignored_columns_are_ignored(self) -> None:
        """The columns our outputs add are accepted and never read as updates."""
        header = ",".join(["id", "type", *FAILURE_COLUMNS, "attempts", "session_status"])
        cells = ",".join([ID1, "document", *("x" for _ in FAILURE_COLUMNS), "3", "verified"])

        assert [{"type": "document"}] == params_of(f"{header}\n{cells}\n")

    def test_short_row_cells_are_empty(self) -> None:
        """Missing cells at the end of a short row are empty."""
        (row,) = read(f"id,type,metadata.k\n{ID1},document\n")

        assert ({"type": "document"}, "") == (row.params, row.raw["metadata.k"])


class TestRowErrors:
    def test_metadata_field_maps_to_its_column(self) -> None:
        """A rule broken by one metadata value names that metadata.<key> column."""
        (row,) = read(f"id,metadata.a.b\n{ID1},{'v' * 501}\n")

        assert row.error is not None
        assert ("metadata.a.b", None) == (row.error.column, row.update)

    def test_strict_refuses_at_first_bad_row(self) -> None:
        """With strict, the first bad row refuses the file with its row and column."""
        text = f"id,type\n{ID1},document\n{ID2},passport\n"

        with pytest.raises(CsvFileError) as caught:
            read(text, strict=True)

        assert (3, "type") == (caught.value.row, caught.value.column)
        assert str(caught.value).startswith("row 3, column type: 'passport' is not")

    def test_strict_passes_good_rows(self) -> None:
        """With strict, a file of good rows reads as usual."""
        assert 2 == len(read(f"id,type\n{ID1},document\n{ID2},id_number\n", strict=True))


class TestParsedRow:
    def test_valid_row_to_new_row(self) -> None:
        """A valid row becomes a NewRow with its canonical params."""
        (row,) = read(f"id,stripe_account,type\n{ID1},acct_1,document\n")

        expected = NewRow(2, ID1, "acct_1", {"type": "document"}, idempotency_key="k")
        assert expected == row.to_new_row("k")

    def test_rejected_row_to_new_row(self) -> None:
        """A rejected row becomes a NewRow with its rejection and no params."""
        (row,) = read(f"id,type\n{ID1},passport\n")

        new_row = row.to_new_row()

        assert (None, "type") == (new_row.params, new_row.rejection and new_row.rejection[0])


class TestExampleFile:
    def test_example_parses_with_one_rejected_row(self) -> None:
        """examples/updates.csv gives 13 rows; only row 14 (a bad boolean) is rejected."""
        example = Path(__file__).parent.parent.parent / "examples" / "updates.csv"

        rows = list(read_updates(example))

        assert 13 == len(rows)
        assert [(14, "options.document.require_id_number")] == [
            (row.row, row.error.column) for row in rows if row.error is not None
        ]


class TestUnicodeWhitespaceInKeys:
    @pytest.mark.parametrize("space", [" ", "\t", "\u00a0", "\u2028", "\u2029", "\u3000"])
    def test_whitespace_around_a_column_name_is_trimmed_alike(self, space: str) -> None:
        """Any whitespace (str.strip) after a metadata column's name is trimmed, as a space is."""
        assert [{"metadata": {"n": "1"}}] == params_of(f"id,metadata.n{space}\n{ID1},1\n")

    @pytest.mark.parametrize("space", [" ", "\u00a0", "\u2028", "\u2029"])
    def test_whitespace_starting_a_key_is_refused_alike(self, space: str) -> None:
        """Whitespace of any kind between ``metadata.`` and the key refuses the file."""
        with pytest.raises(CsvFileError, match="must not start or end with whitespace"):
            read(f"id,metadata.{space}n\n{ID1},1\n")
