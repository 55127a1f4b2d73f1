"""Regenerate the bad-CSV corpus: ``uv run python tests/data/bad_csv/_make_corpus.py``.

The files are committed; this script documents how the binary and encoding cases were made.
Expected results live in ``tests/unit/test_bad_csv_corpus.py``.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
ID1 = "vs_1AAAAAAAAAAAAAAAAAAAAAAA"
ID2 = "vs_2BBBBBBBBBBBBBBBBBBBBBBB"
ID3 = "vs_3CCCCCCCCCCCCCCCCCCCCCCC"


def lines(*rows: str, end: str = "\n") -> bytes:
    """The rows joined and terminated by ``end``, as UTF-8."""
    return "".join(row + end for row in rows).encode("utf-8")


FILES: dict[str, bytes] = {
    # -- refused: structure ----------------------------------------------------------------
    "empty.csv": b"",
    "header_only.csv": lines("id,type,metadata.plan"),
    "header_then_blank_rows.csv": lines("id,type", ",", "", " , "),
    "blank_first_row.csv": lines("", "id,type", f"{ID1},document"),
    "semicolon_separated.csv": lines("id;type", f"{ID1};document"),
    "no_id_column.csv": lines("type,metadata.plan", "document,gold"),
    "session_column.csv": lines("session_id,type", f"{ID1},document"),
    "unknown_columns.csv": lines("id,type,colour,note", f"{ID1},document,red,x"),
    "typo_metadata.csv": lines("id,metdata.plan", f"{ID1},gold"),
    "typo_option.csv": lines("id,options.document.require_selfie", f"{ID1},true"),
    "typo_case.csv": lines("ID,type", f"{ID1},document"),
    "typo_last_part.csv": lines("id,email", f"{ID1},a@example.com"),
    "duplicate_header.csv": lines("id,type,metadata.plan,type", f"{ID1},document,gold,"),
    "duplicate_after_trim.csv": lines("id,metadata.plan, metadata.plan ", f"{ID1},a,b"),
    "empty_header_cell.csv": lines("id,,type", f"{ID1},,document"),
    "metadata_empty_key.csv": lines("id,metadata.", f"{ID1},x"),
    "metadata_key_too_long.csv": lines("id,metadata." + "k" * 41, f"{ID1},x"),
    "metadata_key_brackets.csv": lines("id,metadata.a[b]", f"{ID1},x"),
    "too_many_cells.csv": lines("id,metadata.note", f"{ID1},hello, world"),
    # -- refused: encoding and binary ------------------------------------------------------
    "latin1.csv": "id,metadata.name\nvs_1AAAAAAAAAAAAAAAAAAAAAAA,José\n".encode("latin-1"),
    "latin1_late.csv": lines("id,metadata.n", f"{ID1},a", f"{ID2},b", f"{ID3},c")
    + "vs_4DDDDDDDDDDDDDDDDDDDDDDD,Zoë\n".encode("latin-1"),
    "utf16_bom.csv": "id,type\r\nvs_1AAAAAAAAAAAAAAAAAAAAAAA,document\r\n".encode("utf-16"),
    "utf16_no_bom.csv": "id,type\nvs_1AAAAAAAAAAAAAAAAAAAAAAA,document\n".encode("utf-16-le"),
    "png_image.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
    "xlsx_workbook.csv": b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml",
    "xls_workbook.csv": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 24,
    "nul_byte.csv": lines("id,type", f"{ID1},document") + f"{ID2},docu\x00ment\n".encode(),
    # -- refused: quoting and sizes --------------------------------------------------------
    "unterminated_quote.csv": lines("id,metadata.note", f'{ID1},"starts here', f"{ID2},x"),
    "text_after_quote.csv": lines("id,metadata.note", f"{ID1},ok", f'{ID2},"quoted" tail'),
    "huge_field.csv": lines("id,metadata.note", f"{ID1},{'x' * 70_000}"),
    "cell_over_limit.csv": lines("id,metadata.note", f"{ID1},x", f"{ID2},{'x' * 10_001}"),
    "too_many_columns.csv": lines(
        "id," + ",".join(f"metadata.k{n}" for n in range(200)),
        ID1 + ",v" * 200,
    ),
    "many_columns_with_outputs.csv": lines(
        "id,row,outcome,reason,error_column,error_type,error_code,error_message,retryable,"
        "request_id,attempts,session_status,batch_id,"
        + ",".join(f"metadata.k{n}" for n in range(199)),
        ID1 + "," * 12 + ",v" * 199,
    ),
    "huge_unterminated_quote.csv": lines("id,metadata.note", f'{ID1},"open')
    + lines(*(f"{ID2},{'y' * 1000}" for _ in range(200))),
    # -- parsed, with row errors -----------------------------------------------------------
    "bad_ids.csv": lines(
        "id,type", "vs-123,document", "cus_123,document", ",document", "vs_ab c,document"
    ),
    "bad_accounts.csv": lines(
        "id,stripe_account,type", f"{ID1},acct-1,document", f"{ID2},123,document"
    ),
    "bad_booleans.csv": lines(
        "id,options.document.require_live_capture",
        f"{ID1},maybe",
        f"{ID2},2",
        f"{ID3}, YES ",
    ),
    "bad_enums.csv": lines(
        "id,type,options.document.allowed_types",
        f"{ID1},passport,",
        f"{ID2},,passport|visa",
        f"{ID3},,passport||id_card",
    ),
    "wrong_types.csv": lines(
        "id,type,options.document.allowed_types,options.document.require_id_number",
        f"{ID1},1,,",
        f"{ID2},,true,",
        f"{ID3},,,passport",
    ),
    "empty_update.csv": lines("id,type,metadata.plan", f"{ID1},,", f"{ID2},  ,   "),
    "metadata_51_keys.csv": lines(
        "id," + ",".join(f"metadata.k{n}" for n in range(51)),
        ID1 + "," + ",".join("v" for _ in range(51)),
    ),
    "metadata_value_too_long.csv": lines("id,metadata.note", f"{ID1},{'v' * 501}"),
    "email_too_long.csv": lines("id,provided_details.email", f"{ID1},{'a' * 789}@example.com"),
    "unset_misuse.csv": lines(
        "id,type,metadata,metadata.plan,options.document,options.document.require_id_number",
        f"{ID1},!unset,,,,",
        f"{ID2},,yes,,,",
        f"{ID3},,!unset,gold,,",
        "vs_4DDDDDDDDDDDDDDDDDDDDDDD,,,,!unset,true",
    ),
    # -- parsed, valid ---------------------------------------------------------------------
    "duplicate_ids.csv": lines("id,metadata.plan", f"{ID1},gold", f"{ID1},silver"),
    "bom_crlf.csv": b"\xef\xbb\xbf" + lines("id,type", f"{ID1},id_number", end="\r\n"),
    "cr_only.csv": lines("id,type", f"{ID1},id_number", f'{ID2},"document"', end="\r"),
    "short_and_padded_rows.csv": lines(
        "id,type,metadata.plan", f"{ID1},id_number", f"{ID2},,gold,,,"
    ),
    "formula_cells.csv": lines(
        "id,metadata.a,metadata.b,metadata.c,provided_details.phone",
        f"{ID1},=1+2,@SUM(A1),-5,'+15555550100",
        f"{ID2},'=kept,''=one quote gone,'plain,+15555550101",
    ),
    "failures_resubmit.csv": lines(
        "id,metadata.plan,row,outcome,reason,error_column,error_type,error_code,"
        "error_message,retryable,request_id",
        f"{ID1},gold,7,failed,,,APIError,,Request req_1: boom,true,req_1",
    ),
    "quoted_newlines.csv": lines(
        "id,metadata.note,type",
        f'{ID1},"line one\r\nline two\nline three",document',
        f"{ID2},,id_number",
    ),
}


def main() -> None:
    """Write every corpus file next to this script."""
    for name, content in FILES.items():
        (HERE / name).write_bytes(content)


if __name__ == "__main__":
    main()
