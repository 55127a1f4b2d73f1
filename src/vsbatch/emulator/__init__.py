"""A stateful Stripe Identity emulator for rehearsing batches and for tests.

It serves Stripe's VerificationSession routes (list, create, retrieve, update, cancel, redact)
with Stripe's form encoding, errors, idempotency, per-account rate limits and lock timeouts, plus
seeded fault injection and an ``/_emulator`` admin API. Behaviour FACTS.md marks UNVERIFIED is
documented where it is implemented (:mod:`vsbatch.emulator.operations`, :mod:`.faults`,
:mod:`.wire`) and switchable in :class:`EmulatorConfig`.
"""

from __future__ import annotations

from vsbatch.emulator.app import API_VERSION, create_app
from vsbatch.emulator.config import EmulatorConfig
from vsbatch.emulator.forms import UPDATE_PARAMETERS
from vsbatch.emulator.server import EmulatorServer, serve
from vsbatch.emulator.state import Emulator, SeedRequest

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
