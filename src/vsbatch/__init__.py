"""vsbatch: apply Stripe Identity VerificationSession updates to many sessions, safely.

The application API (see ``docs/app-api.md``)::

    from vsbatch import enqueue_update

    handle = enqueue_update("vs_123", {"metadata": {"tier": "gold"}}, key="order-42")
    record = handle.wait(timeout=30)  # or handle.outcome() later

The names below are imported on first use (PEP 562): ``import vsbatch`` alone, which every
``vsbatch`` command does, must not import Celery, httpx and Redis (``vsbatch --help``).
"""

# Underscored: the package's public names are exactly ``__all__`` (tests/unit/test_app_api.py).
import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from vsbatch.app_api import UpdateHandle, enqueue_update, get_update
    from vsbatch.errors import InvalidUpdate, UpdateTimeout, VsbatchError
    from vsbatch.model.row import Outcome, RowRecord
    from vsbatch.model.update import SessionUpdate, parse_update

# Each public name and the module that defines it.
_EXPORTS = {
    "InvalidUpdate": "vsbatch.errors",
    "Outcome": "vsbatch.model.row",
    "RowRecord": "vsbatch.model.row",
    "SessionUpdate": "vsbatch.model.update",
    "UpdateHandle": "vsbatch.app_api",
    "UpdateTimeout": "vsbatch.errors",
    "VsbatchError": "vsbatch.errors",
    "enqueue_update": "vsbatch.app_api",
    "get_update": "vsbatch.app_api",
    "parse_update": "vsbatch.model.update",
}

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


def __getattr__(name: str) -> _typing.Any:
    """Import a public name's module on first use, then keep the name here."""
    module = _EXPORTS.get(name)
    if module is None:
        # AttributeError lets ``from vsbatch import cli`` fall back to importing the submodule.
        raise AttributeError(f"module 'vsbatch' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
