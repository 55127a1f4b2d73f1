"""The update CSV format's constants and its one reversible rule for cells.

The format is described for users in ``docs/csv-format.md``; this package is its reference.
Writers prefix ``'`` to formula-like cells (``=``, ``+``, ``-``, ``@``, tab, CR) so a
spreadsheet never evaluates them, and to cells with surrounding whitespace so no reader trims
them; the reader removes one such ``'`` again and ``!!unset`` stands for the text ``!unset``,
so a failures file re-submitted as it is gives back every update byte for byte.
"""

from __future__ import annotations

import re

UNSET = "!unset"
LIST_SEPARATOR = "|"
# Caps far above any real update file (Stripe: 50 metadata keys, 500-character values,
# 800-character emails) that keep memory flat on hostile or broken input.
MAX_COLUMNS = 200  # not counting the columns vsbatch's own outputs add (IGNORED_COLUMNS)
MAX_FIELD_CHARS = 10_000
MAX_LINE_CHARS = 1024 * 1024  # one physical line, and one row (a record over many lines)
ID_COLUMN = "id"
ACCOUNT_COLUMN = "stripe_account"
DOC = "options.document"
BOOLEAN_COLUMNS = tuple(
    f"{DOC}.{name}"
    for name in ("require_id_number", "require_live_capture", "require_matching_selfie")
)
UPDATE_COLUMNS: tuple[str, ...] = (
    "type",
    "metadata",
    DOC,
    f"{DOC}.allowed_types",
    *BOOLEAN_COLUMNS,
    "provided_details.email",
    "provided_details.phone",
)
FAILURE_COLUMNS: tuple[str, ...] = (
    "row",
    "outcome",
    "reason",
    "error_column",
    "error_type",
    "error_code",
    "error_message",
    "retryable",
    "request_id",
)
REPORT_COLUMNS: tuple[str, ...] = (
    "row",
    ID_COLUMN,
    ACCOUNT_COLUMN,
    "outcome",
    "reason",
    "error_column",
    "attempts",
    "error_type",
    "error_code",
    "error_message",
    "request_id",
    "session_status",
)
# Columns our own outputs add: accepted on input and ignored, so outputs can be re-submitted.
IGNORED_COLUMNS: frozenset[str] = frozenset(FAILURE_COLUMNS + REPORT_COLUMNS) - {
    ID_COLUMN,
    ACCOUNT_COLUMN,
} | {"batch_id"}

FIXED_COLUMNS = (ID_COLUMN, ACCOUNT_COLUMN, *UPDATE_COLUMNS)
ID_RE = re.compile(r"vs_[A-Za-z0-9]+")
MAX_ID_CHARS = 255
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
FORMULA_START = "=+-@\t\r"
ESCAPED_UNSET = re.compile(r"!+unset")


def protected(text: str) -> bool:
    """True for text the writer prefixes with ``'`` (and the reader takes it off again).

    That is text which, after any leading quotes, is empty or starts like a formula or with
    whitespace, or which ends with whitespace: a spreadsheet would run it or a reader trim it.
    The answer is the same for ``text`` and ``"'" + text``, which makes the prefix reversible.
    """
    bare = text.lstrip("'")
    return not bare or bare[0] in FORMULA_START or bare[0].isspace() or text[-1].isspace()


def neutralise(cell: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would run as a formula or a reader would trim.

    The reader removes that ``'`` again (see :func:`protected`), so every value comes back.
    """
    return f"'{cell}" if cell and protected(cell) else cell


def escape_unset(value: str) -> str:
    """``!unset`` (spaces around it allowed) written as a literal value: one more ``!``."""
    return value.replace("!", "!!", 1) if ESCAPED_UNSET.fullmatch(value.strip()) else value
