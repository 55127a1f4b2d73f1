"""The Redis broker transport, hardened against queue items that are not kombu messages.

Kombu's Redis channel decodes each item it pops as JSON and builds a message from it inside
the worker's event loop. An item that is not JSON, or JSON without the envelope's fields,
raises there and Celery stops the worker ("Unrecoverable error"): one ``LPUSH`` of garbage
would stop every worker. This transport checks each item's envelope before kombu builds a
message from it, and drops one that does not fit with one log line (``messages.refuse``);
the item was already popped and was never recorded as unacked, so it never comes back.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from kombu.transport import redis as kombu_redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vsbatch.messages import refuse

__all__ = ["Channel", "Envelope", "Transport", "transport_for"]


class _DeliveryInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    exchange: str
    routing_key: str


class _Properties(BaseModel):
    model_config = ConfigDict(extra="allow")

    delivery_tag: str
    body_encoding: Literal["base64"]
    delivery_info: _DeliveryInfo


class Envelope(BaseModel):
    """The fields kombu's Redis message needs, with the types it assumes."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    body: str
    content_type: str = Field(alias="content-type")
    content_encoding: str = Field(alias="content-encoding")
    headers: dict[str, Any]
    properties: _Properties

    @field_validator("body")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("body is not base64") from None
        return value


class _NotAMessage(Exception):
    """A popped item that kombu could not turn into a message."""


class Channel(kombu_redis.Channel):
    """Kombu's Redis channel; a popped item that is not a message is dropped, not fatal."""

    def _brpop_read(self, **options: Any) -> bool:
        try:
            return bool(super()._brpop_read(**options))  # type: ignore[misc]
        except (_NotAMessage, json.JSONDecodeError, UnicodeDecodeError) as exc:
            refuse(None, None, f"not a kombu message: {exc}")
            return True


class Transport(kombu_redis.Transport):
    """Kombu's Redis transport with :class:`Channel`."""

    Channel = Channel

    def _deliver(self, message: Any, queue: str | None) -> None:
        try:
            Envelope.model_validate(message)
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "item"
            raise _NotAMessage(f"{where}: {first['msg']}") from None
        super()._deliver(message, queue)


def transport_for(url: str | None) -> str | None:
    """Celery's ``broker_transport`` for a broker URL: this transport for Redis URLs."""
    scheme = (url or "").partition("://")[0]
    return f"{__name__}:Transport" if scheme in ("redis", "rediss") else None
