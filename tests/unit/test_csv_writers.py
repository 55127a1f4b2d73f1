"""CSV out: neutralised cells, columns from params, the failures and report writers, and the
round trip of a failures file back through the reader.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import DOCUMENT_OPTIONS
from tests.unit.csv_helpers import ID1, ID2, ID3, read
from vsbatch.intake.csv_cells import columns_from_params
from vsbatch.intake.csv_format import FAILURE_COLUMNS, REPORT_COLUMNS, neutralise
from vsbatch.intake.csv_writers import write_failures, write_report_csv
from vsbatch.model.row import Outcome, RowRecord
from vsbatch.model.update import parse_update


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
