"""Celery messages built by hand, as an attacker with access to the Redis broker would push them.

A kombu Redis-transport envelope in Celery protocol v2 around any body, so that tests can
push forged, malformed or pickled messages onto a real worker's queue.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from vsbatch.worker.celery_app import QUEUE


def envelope(
    task: Any,
    body: bytes,
    *,
    content_type: str = "application/json",
    content_encoding: str = "utf-8",
    **headers: Any,
) -> tuple[str, str]:
    """A kombu Redis-transport message in Celery protocol v2; returns (its id, its JSON)."""
    task_id = str(uuid.uuid4())
    message = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": content_encoding,
        "content-type": content_type,
        "headers": {
            "lang": "py",
            "task": task,
            "id": task_id,
            "root_id": task_id,
            "parent_id": None,
            "group": None,
            "argsrepr": "()",
            "kwargsrepr": "{}",
            "origin": "attacker@example",
            "retries": 0,
            "eta": None,
            "expires": None,
            **headers,
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": QUEUE},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return task_id, json.dumps(message)
