"""What the reader, file and writer CSV tests share: session ids and reading a CSV given as
text (:func:`read`, :func:`refusal`, :func:`params_of`).
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from vsbatch.errors import CsvFileError
from vsbatch.intake.csv_cells import RowError
from vsbatch.intake.csv_reader import ParsedRow, read_updates

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
