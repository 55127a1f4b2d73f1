"""A stateful Stripe Identity emulator for rehearsing batches and for tests.

It serves Stripe's VerificationSession routes (list, create, retrieve, update, cancel, redact)
with Stripe's form encoding, errors, idempotency, per-account rate limits and lock timeouts, plus
seeded fault injection and an ``/_emulator`` admin API (stats, seeding, config, reset).

Assumptions about behaviour FACTS.md marks UNVERIFIED (switchable in :class:`EmulatorConfig`
where a client could care):

- Update, cancel or redact refused for the session's status: 400 ``invalid_request_error``, code
  ``session_invalid_status``, param ``status``; stored under the idempotency key (the request
  executed). ``allow_update_any_status`` / ``allow_metadata_update_any_status`` (both off) accept
  updates in other statuses; a redacted session is never updated.
- 409 ``idempotency_key_in_use`` has type ``idempotency_error``. A 404 for an unknown session is
  stored under its key; validation 400s, 401s, 429s and injected 503s are not.
- ``options[document]=""`` leaves ``options`` as ``{}``. Redaction answers ``processing`` and
  completes ``redaction_seconds`` later (0 by default: at the next read), with ``[redacted]``
  placeholders; the client reference id is nulled; redacting twice answers 200.
- Connected accounts exist only when seeded (any other ``Stripe-Account`` is 403
  ``account_invalid``); ``Stripe-Version`` takes the versions :mod:`vsbatch.emulator.versions`
  knows (plus ``api_versions``) and every body is shaped as 2026-07-29.dahlia.
- Per-type validation codes (``parameter_invalid_string``, ``_boolean``, ``_integer``,
  ``_object``, ``_array``) are the emulator's; Stripe documents ``parameter_unknown``,
  ``parameter_missing``, ``parameter_invalid_empty``, ``rate_limit`` and ``lock_timeout``.
- The rate limit is a sliding window over every ``/v1`` request of an account (reads included).
  A write to a busy session waits ``lock_wait_ms`` (0) before 429 ``lock_timeout``.
- Faults: an injected 503 is refused before execution; a hung request that does not apply answers
  503 after ``hang_seconds``; ``drop_applies`` and ``hang_applies`` default to true (the worst case
  for a client: no answer, yet the change took effect). A ``gateway`` fault is a proxy in front
  of Stripe answering instead of it (HTML 502/504 without Stripe headers, an HTML 200, or another
  session's JSON) while Stripe may still execute the request behind it, ``gateway_delay_seconds``
  later. Draws are keyed on ``(seed, account, method, path, n)`` so runs repeat regardless of
  interleaving.
- Test mode only: live keys get 401. Request ids are ``req_`` + 14 base62 characters; session ids
  ``vs_`` + 24, drawn from a generator seeded with ``seed`` (reset gives the same ids again).
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from vsbatch.emulator.app import create_app
    from vsbatch.emulator.config import EmulatorConfig
    from vsbatch.emulator.forms import UPDATE_PARAMETERS
    from vsbatch.emulator.server import EmulatorServer, serve
    from vsbatch.emulator.state import Emulator, SeedRequest
    from vsbatch.emulator.versions import API_VERSION

__all__ = [
    "API_VERSION",
    "UPDATE_PARAMETERS",
    "Emulator",
    "EmulatorConfig",
    "EmulatorServer",
    "SeedRequest",
    "create_app",
    "serve",
]

# Imported on first use: ``vsbatch --help`` loads the ``emulator`` sub-app from this package
# and must not pay for starlette, uvicorn and pydantic.
_HOMES = {
    "API_VERSION": "versions",
    "create_app": "app",
    "EmulatorConfig": "config",
    "UPDATE_PARAMETERS": "forms",
    "EmulatorServer": "server",
    "serve": "server",
    "Emulator": "state",
    "SeedRequest": "state",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_importlib.import_module(f"{__name__}.{home}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
