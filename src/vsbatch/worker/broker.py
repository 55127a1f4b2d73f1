"""The Redis broker transport, hardened against queue items that are not kombu messages.

Kombu's Redis channel decodes each item it pops as JSON and builds a message from it inside
the worker's event loop. An item that is not JSON, or JSON without the envelope's fields,
raises there and Celery stops the worker ("Unrecoverable error"): one ``LPUSH`` of garbage
would stop every worker. This transport checks each item's envelope before kombu builds a
message from it, and drops one that does not fit with one log line (``messages.refuse``);
the item was already popped and was never recorded as unacked, so it never comes back.

Kombu records each message a worker takes (the "unacked" index and hash the visibility
timeout restores from) with MULTI, two writes and EXEC, and removes it on the ack the same
way: eight commands a message. :class:`QoS` writes and removes the same two keys with one
script call each (``store/scripts/unacked.lua``); kombu's restore reads them unchanged.

It also keeps a worker alive while Redis refuses writes (``MISCONF`` on a full disk, ``OOM``):
kombu's ``BRPOP`` is a write, and its refusal would stop the worker too. The channel logs one
line, waits (backing off up to :data:`REFUSED_MAX_WAIT` seconds) and polls again, so the
fleet works on as soon as Redis accepts writes again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from queue import Empty
from typing import Any, Literal, cast

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.json import dumps
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vsbatch.store.scripts import lua_script
from vsbatch.worker.messages import refuse

__all__ = ["Channel", "Envelope", "SentinelTransport", "Transport", "transport_for"]


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


log = logging.getLogger(__name__)

# Waits between polls while Redis refuses writes: doubling from the first, up to the last.
REFUSED_FIRST_WAIT = 0.5
REFUSED_MAX_WAIT = 10.0


_UNACKED = lua_script("unacked.lua")
_UNACKED_SHA = hashlib.sha1(_UNACKED.encode()).hexdigest()


class QoS(kombu_redis.QoS):
    """Kombu's acks, where an ack Redis refuses (writes refused) does not stop the worker, and
    where recording a message as taken, then acknowledged, is one command each."""

    def append(self, message: Any, delivery_tag: Any) -> None:
        if self._redis.global_keyprefix:  # kombu's prefixing client renames only one key
            super().append(message, delivery_tag)
            return
        delivery = message.delivery_info
        record = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        self._unacked("add", delivery_tag, repr(time.time()), record)
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag: Any) -> None:
        try:
            if self._redis.global_keyprefix:
                super().ack(delivery_tag)
            else:
                self._unacked("remove", delivery_tag)
                virtual.QoS.ack(self, delivery_tag)
        except redis.ResponseError:
            # The message stays in Redis's unacked set and comes back after the visibility
            # timeout: its rows are final in the ledger by then, or done again under their
            # idempotency keys. Only this worker forgets it, so that it takes new messages.
            log.debug("Redis refused an ack; the message comes back later")
            virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)
        except redis.ResponseError:
            log.debug("Redis refused a reject; the message comes back later")
            virtual.QoS.ack(self, delivery_tag)

    @property
    def _redis(self) -> kombu_redis.Channel:
        return cast(kombu_redis.Channel, self.channel)

    def _unacked(self, *args: str) -> None:
        """Run ``unacked.lua`` (loading it on first use, or after a Redis restart)."""
        keys = (self.unacked_index_key, self.unacked_key)
        with self._redis.conn_or_acquire() as client:
            try:
                client.evalsha(_UNACKED_SHA, 2, *keys, *args)
            except redis.exceptions.NoScriptError:
                client.eval(_UNACKED, 2, *keys, *args)


class Channel(kombu_redis.Channel):
    """Kombu's Redis channel; a popped item that is not a message is dropped, and a refused
    poll (Redis refuses writes) is waited out, neither is fatal."""

    QoS = QoS
    _refused_wait = 0.0

    def _brpop_read(self, **options: Any) -> bool:
        try:
            read = bool(super()._brpop_read(**options))  # type: ignore[misc]
        except (_NotAMessage, json.JSONDecodeError, UnicodeDecodeError) as exc:
            refuse(None, None, f"not a kombu message: {exc}")
            return True
        except redis.ResponseError as exc:
            self._wait_refused(exc)
            raise Empty() from None
        if self._refused_wait:
            log.warning("Redis accepts writes again: this worker takes messages again")
            self._refused_wait = 0.0
        return read

    def _wait_refused(self, exc: redis.ResponseError) -> None:
        """One line when Redis starts refusing, then a growing wait before each new poll."""
        from vsbatch.bootstrap import redis_refusal

        if not self._refused_wait:
            log.warning("%s", redis_refusal(exc, then="this worker polls again on its own"))
        self._refused_wait = min(REFUSED_MAX_WAIT, 2 * self._refused_wait or REFUSED_FIRST_WAIT)
        # The event loop only polls the queue: waiting here holds back nothing Redis would take.
        time.sleep(self._refused_wait)


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


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """:class:`Channel`'s hardening on kombu's Sentinel channel (the master found by asking
    the sentinels, again after a failover)."""


class SentinelTransport(Transport, kombu_redis.SentinelTransport):
    """Kombu's Sentinel transport (``sentinel://``) with :class:`SentinelChannel`."""

    Channel = SentinelChannel


def transport_for(url: str | None) -> str | None:
    """Celery's ``broker_transport`` for a broker URL: this module's transports for Redis and
    Sentinel URLs; None (kombu's choice by scheme) for any other, such as RabbitMQ's."""
    scheme = (url or "").partition("://")[0].lower()
    if scheme == "sentinel":
        return f"{__name__}:SentinelTransport"
    return f"{__name__}:Transport" if scheme in ("redis", "rediss") else None
