"""vsbatch: apply Stripe Identity VerificationSession updates to many sessions, safely.

The application API (see ``docs/app-api.md``)::

    from vsbatch import enqueue_update

    handle = enqueue_update("vs_123", {"metadata": {"tier": "gold"}}, key="order-42")
    record = handle.wait(timeout=30)  # or handle.outcome() later
"""

from vsbatch.app_api import UpdateHandle, enqueue_update, get_update
from vsbatch.errors import InvalidUpdate, UpdateTimeout, VsbatchError
from vsbatch.ledger import Outcome, RowRecord
from vsbatch.updates import SessionUpdate, parse_update

__all__ = [
    "InvalidUpdate",
    "Outcome",
    "RowRecord",
    "SessionUpdate",
    "UpdateHandle",
    "UpdateTimeout",
    "VsbatchError",
    "enqueue_update",
    "get_update",
    "parse_update",
]
