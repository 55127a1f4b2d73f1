"""Which ``Stripe-Version`` values the emulator accepts, and the one its answers are shaped as.

Stripe answers a request in the version its ``Stripe-Version`` header names (the account's
default without one), echoes that version in the answer's ``Stripe-Version`` header, and refuses
a version it never released: HTTP 400 ``invalid_request_error``, "Invalid Stripe API version:
<value>" (the text seen from the real API, stripe/stripe-java#682). The emulator knows the
versions its sources name (:data:`KNOWN_VERSIONS`), plus any listed in the ``api_versions``
setting for an account pinned to another one.

Not emulated: shaping by version. Every answer has the fields and shapes of
:data:`API_VERSION`, whatever version it was asked for and echoes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["API_VERSION", "KNOWN_VERSIONS", "accepted_version"]

API_VERSION: Final = "2026-07-29.dahlia"
"""The version of the OpenAPI spec the emulator follows; the default without a header."""

KNOWN_VERSIONS: Final[dict[str, str]] = {
    API_VERSION: "Stripe's OpenAPI spec and fixtures (shared/stripe-api)",
    "2026-06-24.dahlia": "stripe-python 15.3.1 (shared/stripe-api/README.md)",
    "2026-10-28.endive": "stripe-python 16.1.0, the project's pinned dev dependency",
}
"""Released versions the emulator accepts, each with the source that names it."""


def accepted_version(header: str | None, extra: Iterable[str] = ()) -> str | None:
    """The version a request is answered in, or None when Stripe would refuse the header.

    Args:
        header: The request's ``Stripe-Version`` (None: absent, so the default).
        extra: Further versions to accept (the ``api_versions`` setting).
    """
    if header is None:
        return API_VERSION
    if header in KNOWN_VERSIONS or header in extra:
        return header
    return None
