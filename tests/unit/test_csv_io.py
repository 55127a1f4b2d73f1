"""CSV in and out: the reader's rules, streaming, the writers and their round trips."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import DOCUMENT_OPTIONS
from vsbatch.errors import CsvFileError
from vsbatch.intake.csv_cells import RowError, columns_from_params
from vsbatch.intake.csv_format import FAILURE_COLUMNS, REPORT_COLUMNS, neutralise
from vsbatch.intake.csv_reader import ParsedRow, file_digest, read_updates
from vsbatch.intake.csv_writers import write_failures, write_report_csv
from vsbatch.model.row import NewRow, Outcome, RowRecord
from vsbatch.model.update import parse_update

ID1 = "vs_1AAAAAAAAAAAAAAAAAAAAAAA"
ID2 = "vs_2BBBBBBBBBBBBBBBBBBBBBBB"
ID3 = "vs_3CCCCCCCCCCCCCCCCCCCCCCC"


def read(text: str | bytes, *, strict: bool = False) -> list[ParsedRow]:
    """Every row of a CSV given as text (encoded as UTF-8) or bytes."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return list(read_updates(io.BytesIO(data), strict=strict))


def refusal(text: str | bytes) -> CsvFileError:
    """The CsvFileError that reading the CSV raises."""
    with pytest.raises(CsvFileError) as caught:
        read(text)
    return caught.value


def params_of(text: str) -> list[dict[str, Any] | RowError | None]:
    """Each row's params, or its error."""
    return [row.error or row.params for row in read(text)]


def record(params: dict[str, Any] | None, **fields: Any) -> RowRecord:
    """A failed ledger record of row 2 for ID1 with these params and fields."""
    defaults: dict[str, Any] = {
        "batch_id": "b1",
        "row": 2,
        "session_id": ID1,
        "account": None,
        "params": params,
        "idempotency_key": None,
        "seq": 1,
        "outcome": Outcome.FAILED,
    }
    return RowRecord(**{**defaults, **fields})


def failures_csv(records: list[RowRecord]) -> str:
    """The failures CSV written for these records."""
    out = io.StringIO(newline="")
    write_failures(records, out)
    return out.getvalue()


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


class TestFileRefusals:
    def test_line_too_long(self) -> None:
        """A physical line over 1 MiB is refused without reading it whole."""
        data = b"id,type\n" + b"x" * (1024 * 1024 + 10)

        error = refusal(data)

        assert ("row 2: a line is longer than 1048576 characters", 2) == (str(error), error.row)

    def test_field_limit_just_above_maximum(self) -> None:
        """A cell of exactly 10,000 characters is read (then Stripe's rules apply)."""
        (row,) = read(f"id,metadata.k\n{ID1},{'v' * 10_000}\n")

        assert row.error is not None
        assert "metadata.k" == row.error.column

    def test_bom_only_file(self) -> None:
        """A file holding only a byte order mark has no header row."""
        error = refusal(b"\xef\xbb\xbf")

        assert ("the file has no header row", None) == (str(error), error.row)

    def test_rows_before_a_late_error_were_yielded(self) -> None:
        """Rows before a late file error come out first, so callers must stage them."""
        data = f"id,type\n{ID1},document\n".encode() + b"vs_x,\x00\n"
        seen: list[int] = []

        with pytest.raises(CsvFileError):
            for row in read_updates(io.BytesIO(data)):
                seen.append(row.row)

        assert [2] == seen


class _GeneratedStream(io.RawIOBase):
    """A binary stream producing a CSV of ``rows`` rows on the fly, never held whole."""

    def __init__(self, rows: int) -> None:
        self._chunks = self._generate(rows)
        self._pending = memoryview(b"")

    @staticmethod
    def _generate(rows: int) -> Iterator[bytes]:
        yield b"id,metadata.n,options.document.require_matching_selfie\r\n"
        for start in range(0, rows, 1000):
            numbers = range(start, min(rows, start + 1000))
            yield b"".join(b"vs_%024d,%d,true\r\n" % (n, n) for n in numbers)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            self._pending = memoryview(next(self._chunks, b""))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _resident_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class TestStreaming:
    @pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
    def test_memory_does_not_grow_with_the_file(self) -> None:
        """Between row 10,000 and row 200,000 resident memory grows by less than 10 MB."""
        # Measured while the reader is still open: rows it held would still be alive.
        resident: dict[int, int] = {}
        valid = 0

        for row in read_updates(io.BufferedReader(_GeneratedStream(200_000))):
            valid += row.error is None
            if row.row in (10_001, 200_001):
                resident[row.row] = _resident_bytes()

        assert 200_000 == valid
        assert resident[200_001] - resident[10_001] < 10_000_000

    def test_peak_allocation_is_small(self) -> None:
        """Reading 20,000 rows allocates under 1 MB at peak (tracemalloc is slow at more)."""
        tracemalloc.start()
        try:
            count = sum(1 for _ in read_updates(io.BufferedReader(_GeneratedStream(20_000))))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        assert 20_000 == count
        assert peak < 1_000_000

    def test_first_row_before_end_of_file(self) -> None:
        """The first row comes out before the stream is read to its end."""
        stream = io.BufferedReader(_GeneratedStream(100_000))

        first = next(read_updates(stream))

        assert 2 == first.row
        assert b"" != stream.read(1)


class TestFileDigest:
    def test_sha256_of_the_bytes(self, tmp_path: Path) -> None:
        """The digest is the hex SHA-256 of the file's bytes."""
        path = tmp_path / "u.csv"
        path.write_bytes(b"id,type\r\n" * 100_000)

        assert hashlib.sha256(path.read_bytes()).hexdigest() == file_digest(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a CsvFileError."""
        with pytest.raises(CsvFileError):
            file_digest(tmp_path / "missing.csv")


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


class TestNeutralise:
    @pytest.mark.parametrize(
        ("cell", "written"),
        [
            ("=1+2", "'=1+2"),
            ("+15555550100", "'+15555550100"),
            ("-5", "'-5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("'=x", "''=x"),
            ("'plain", "'plain"),
            ("plain", "plain"),
            ("", ""),
        ],
    )
    def test_neutralise(self, cell: str, written: str) -> None:
        """Formula-like cells (and cells that would read back as one) get one leading '."""
        assert written == neutralise(cell)


class TestColumnsFromParams:
    def test_every_field(self) -> None:
        """Each field maps to its column, in the canonical order."""
        params = {
            "type": "document",
            "metadata": {"b": "2", "a": "", "c": "!unset"},
            "options": {
                "document": {
                    "allowed_types": ["passport", "id_card"],
                    "require_id_number": False,
                    "require_matching_selfie": True,
                }
            },
            "provided_details": {"email": "a@example.com", "phone": "+15555550100"},
        }
        expected = [
            ("type", "document"),
            ("metadata.a", "!unset"),
            ("metadata.b", "2"),
            ("metadata.c", "!!unset"),
            ("options.document.allowed_types", "passport|id_card"),
            ("options.document.require_id_number", "false"),
            ("options.document.require_matching_selfie", "true"),
            ("provided_details.email", "a@example.com"),
            ("provided_details.phone", "+15555550100"),
        ]

        assert expected == list(columns_from_params(params).items())

    def test_unset_groups(self) -> None:
        """Unsetting all metadata or the document options writes the marker in the group column."""
        expected = {"metadata": "!unset", "options.document": "!unset"}

        assert expected == columns_from_params({"metadata": "", "options": {"document": ""}})


_KEY_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="[]\x00")
_VALUE_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_keys = st.text(_KEY_CHARS, min_size=1, max_size=40).filter(lambda k: k == k.strip())
_values = st.one_of(
    st.just(""),
    st.sampled_from(["=1+2", "'=x", "+1", "!unset", "!!unset", " a ", "-", "@"]),
    st.text(_VALUE_CHARS, min_size=1, max_size=500).filter(lambda v: v.strip() != ""),
)
_trimmed = st.text(_VALUE_CHARS, min_size=1, max_size=60).filter(lambda v: v == v.strip() != "")
_document = DOCUMENT_OPTIONS.filter(bool)
_params = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["document", "id_number"]),
        "metadata": st.one_of(st.just(""), st.dictionaries(_keys, _values, min_size=1, max_size=8)),
        "options": st.fixed_dictionaries({"document": st.one_of(st.just(""), _document)}),
        "provided_details": st.fixed_dictionaries(
            {}, optional={"email": _trimmed, "phone": _trimmed}
        ).filter(bool),
    },
).filter(bool)


class TestRoundTrip:
    @settings(max_examples=150, deadline=None)
    @given(params=st.lists(_params, min_size=1, max_size=4))
    def test_failures_file_reads_back_as_the_same_updates(
        self, params: list[dict[str, Any]]
    ) -> None:
        """Reading a failures file gives back every row's session, account and update."""
        canonical = [parse_update(p).to_params() for p in params]
        records = [
            record(p, row=n + 2, account="acct_9" if n % 2 else None)
            for n, p in enumerate(canonical)
        ]

        rows = read(failures_csv(records))

        assert [(ID1, r.account, r.params) for r in records] == [
            (row.session_id, row.account, row.params) for row in rows
        ]

    def test_formula_cells_neutralised_in_file_and_restored_on_read(self) -> None:
        """Formula-like values are written with a ' and read back without it."""
        params = {
            "metadata": {"f": '=HYPERLINK("x")', "q": "'=x"},
            "provided_details": {"phone": "+15555550100"},
        }

        text = failures_csv([record(params, error_message="-boom")])
        (line,) = list(csv.DictReader(io.StringIO(text)))

        assert ('\'=HYPERLINK("x")', "''=x") == (line["metadata.f"], line["metadata.q"])
        assert ("'+15555550100", "'-boom") == (
            line["provided_details.phone"],
            line["error_message"],
        )
        assert [params] == [row.params for row in read(text)]


class TestWriteFailures:
    def test_header(self) -> None:
        """Header: id, stripe_account when any row has one, update columns, error columns."""
        records = [
            record({"metadata": {"z": "1"}}),
            record({"type": "document", "metadata": {"a": ""}}, row=3, account="acct_1"),
        ]

        header = failures_csv(records).splitlines()[0].split(",")

        expected = ["id", "stripe_account", "type", "metadata.a", "metadata.z", *FAILURE_COLUMNS]
        assert expected == header

    def test_no_account_column_without_accounts(self) -> None:
        """Without any account, there is no stripe_account column."""
        header = failures_csv([record({"type": "document"})]).splitlines()[0]

        assert f"id,type,{','.join(FAILURE_COLUMNS)}" == header

    def test_error_cells(self) -> None:
        """The error columns carry the record's outcome and error facts."""
        failed = record(
            {"type": "document"},
            reason=None,
            error_type="APIError",
            error_code="api_error",
            error_message="Request req_1: boom",
            retryable=True,
            request_id="req_1",
        )

        (line,) = list(csv.DictReader(io.StringIO(failures_csv([failed]))))

        expected = {
            "id": ID1,
            "type": "document",
            "row": "2",
            "outcome": "failed",
            "reason": "",
            "error_column": "",
            "error_type": "APIError",
            "error_code": "api_error",
            "error_message": "Request req_1: boom",
            "retryable": "true",
            "request_id": "req_1",
        }
        assert expected == line

    def test_rejected_row_gets_raw_cells_back(self) -> None:
        """A rejected row's raw input cells, when kept in extra, are written back."""
        rejected = record(
            None,
            outcome=Outcome.REJECTED,
            reason="Expected true or false (or yes/no, 1/0), got 'maybe'.",
            column="options.document.require_id_number",
            extra={"raw": {"id": ID1, "options.document.require_id_number": "maybe", "row": "9"}},
        )

        (line,) = list(csv.DictReader(io.StringIO(failures_csv([rejected]))))

        assert ("maybe", "2") == (line["options.document.require_id_number"], line["row"])

    def test_rejected_row_without_raw_has_only_its_id(self) -> None:
        """A rejected row without raw cells is written with its id and error only."""
        rejected = record(None, outcome=Outcome.REJECTED, reason="Missing session id.")

        header = failures_csv([rejected]).splitlines()[0]

        assert f"id,{','.join(FAILURE_COLUMNS)}" == header

    def test_factory_called_once_and_count_returned(self) -> None:
        """A function giving the rows is called once; the count of rows is returned."""
        calls: list[int] = []

        def rows() -> Iterator[RowRecord]:
            calls.append(1)
            yield record({"type": "document"})
            yield record({"type": "id_number"}, row=3, session_id=ID2)

        written = write_failures(rows, io.StringIO(newline=""))

        assert (2, [1]) == (written, calls)

    def test_many_rows_spool_beyond_memory(self) -> None:
        """Tens of thousands of rows (past the in-memory spool) are all written in order."""
        records = (record({"metadata": {"n": str(n)}}, row=n) for n in range(2, 40_002))
        out = io.StringIO(newline="")

        write_failures(records, out)

        rows = read(out.getvalue())
        assert (40_000, {"metadata": {"n": "40001"}}) == (len(rows), rows[-1].params)


class TestWriteReport:
    def test_one_line_per_row(self) -> None:
        """The report has the fixed columns and one neutralised line per row."""
        rows = [
            record({"type": "document"}, outcome=Outcome.SUCCEEDED, attempts=1, request_id="r1"),
            record(
                None,
                row=3,
                session_id=ID3,
                account="acct_1",
                outcome=Outcome.REJECTED,
                reason="=bad",
                column="type",
                session_status="requires_input",
            ),
        ]
        out = io.StringIO(newline="")

        written = write_report_csv(rows, out)

        expected = [
            list(REPORT_COLUMNS),
            ["2", ID1, "", "succeeded", "", "", "1", "", "", "", "r1", ""],
            [
                "3",
                ID3,
                "acct_1",
                "rejected",
                "'=bad",
                "type",
                "0",
                "",
                "",
                "",
                "",
                "requires_input",
            ],
        ]
        assert 2 == written
        assert expected == list(csv.reader(io.StringIO(out.getvalue())))


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
