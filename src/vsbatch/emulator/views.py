"""What an answer shows of a session: the fields Stripe leaves out unless expanded, and the
objects an expansion puts in place of an id.

Stripe's VerificationSession keeps ``provided_details`` and ``verified_outputs`` out of every
answer unless the request expands them (``expand[]=provided_details``; on a list,
``expand[]=data.provided_details``). ``expand[]=last_verification_report`` puts the
``identity.verification_report`` object where its id was. Other expandable fields
(``options``, ``redaction``, ...) are always shown, so expanding them changes nothing. A name that
is not expandable is refused like Stripe does: 400 "This property cannot be expanded".

The report is built from the session, with the values of Stripe's own fixture
(``identity.verification_report`` in ``fixtures3.json``: Jenny Rosen's driving licence). Once
the session is redacted its personal data reads ``[redacted]`` as the session's does
(:func:`vsbatch.emulator.sessions.blank`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Final

from vsbatch.emulator.forms import EXPANDABLE_FIELDS, ParamError
from vsbatch.emulator.sessions import Session, blank

__all__ = ["INCLUDABLE_FIELDS", "expansions", "show"]

INCLUDABLE_FIELDS: Final = ("provided_details", "verified_outputs")
"""Fields Stripe leaves out of a VerificationSession unless the request expands them."""

_LIST_PREFIX: Final = "data."

_DOCUMENT_REPORT: Final[dict[str, Any]] = {
    "address": {
        "city": "San Francisco",
        "country": "US",
        "line1": "1234 Main St.",
        "line2": None,
        "postal_code": None,
        "state": "CA",
    },
    "error": {"code": None, "reason": None},
    "expiration_date": {"day": 1, "month": 12, "year": 2030},
    "files": ["file_QXhWG300bR0L1WbLXBqG1wQc", "file_QXhWi7GgxZg2M3XqN2Y0P4Q2"],
    "first_name": "Jenny",
    "issued_date": {"day": 1, "month": 12, "year": 2020},
    "issuing_country": "US",
    "last_name": "Rosen",
    "status": "verified",
    "type": "driving_license",
}
_ID_NUMBER_REPORT: Final[dict[str, Any]] = {
    "error": {"code": None, "reason": None},
    "first_name": "Jenny",
    "id_number_type": "us_ssn",
    "last_name": "Rosen",
    "status": "verified",
}


def expansions(op: str, names: Iterable[str]) -> frozenset[str]:
    """The session fields a request expands; ``op`` ``list`` takes them as ``data.<field>``.

    Raises:
        ParamError: A name that cannot be expanded here.
    """
    fields: set[str] = set()
    for name in names:
        field = name
        if op == "list":
            field = name[len(_LIST_PREFIX) :] if name.startswith(_LIST_PREFIX) else ""
        if field not in EXPANDABLE_FIELDS:
            raise ParamError(
                f"This property cannot be expanded ({name}).", code=None, param="expand"
            )
        fields.add(field)
    return frozenset(fields)


def show(session: Session, expand: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The session as an answer shows it, given the fields the request expands."""
    shown = {
        key: value
        for key, value in session.obj.items()
        if key not in INCLUDABLE_FIELDS or key in expand
    }
    if "last_verification_report" in expand and shown["last_verification_report"] is not None:
        shown["last_verification_report"] = report(session)
    return shown


def report(session: Session) -> dict[str, Any]:
    """The session's latest ``identity.verification_report`` (Stripe's fixture values)."""
    obj = session.obj
    kind = obj["type"]
    redacted = (obj["redaction"] or {}).get("status") == "redacted"
    found: dict[str, Any] = {
        "id": obj["last_verification_report"],
        "object": "identity.verification_report",
        "client_reference_id": obj["client_reference_id"],
        "created": obj["created"],
        "livemode": obj["livemode"],
        "options": {},
        "type": kind,
        "verification_session": session.id,
    }
    fill = blank if redacted else copy.deepcopy
    if kind == "document":
        document = (obj["options"] or {}).get("document", {})
        found["options"] = {"document": copy.deepcopy(document)}
        found["document"] = fill(_DOCUMENT_REPORT)
    elif kind == "id_number":
        found["options"] = {"id_number": {}}
        found["id_number"] = fill(_ID_NUMBER_REPORT)
    return found
