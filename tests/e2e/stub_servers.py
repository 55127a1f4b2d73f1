"""Tiny real-socket HTTP servers that play a hostile or wrong Stripe for the key-safety tests.

``EchoStripe`` answers like Stripe but echoes the caller's API key (raw, URL-encoded and fully
percent-encoded) in every field it can: ``error.code``, ``error.param``, ``error.message``,
``Request-Id``, ``Idempotency-Key`` and the session's metadata. ``NotStripe`` answers every
request with an HTML page. Both record the requests they get.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import quote

__all__ = ["EchoStripe", "NotStripe", "RefusingStripe", "StubServer", "key_forms"]


def key_forms(key: str) -> dict[str, str]:
    """The spellings of ``key`` a hostile server uses and a leak check looks for."""
    return {
        "raw": key,
        "quoted": quote(key, safe=""),
        "percent-upper": "".join(f"%{b:02X}" for b in key.encode()),
        "percent-lower": "".join(f"%{b:02x}" for b in key.encode()),
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(length).decode() if length else ""
        auth = self.headers.get("Authorization", "")
        self.server.requests.append((self.command, self.path, auth, form))
        status, body, ctype, headers = self.server.stub.answer(self.command, self.path, auth)
        self._send(status, body, ctype, headers)

    do_GET = _answer
    do_POST = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: StubServer
    requests: list[tuple[str, str, str, str]]


class StubServer:
    """A server on a free loopback port, serving in a thread until ``stop``."""

    Answer = tuple[int, bytes, str, dict[str, str]]

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self
        self._server.requests = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[tuple[str, str, str, str]]:
        """(method, path, Authorization, form body) of every request so far."""
        return self._server.requests

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, method: str, path: str, auth: str) -> Answer:
        raise NotImplementedError


class NotStripe(StubServer):
    """Any web server: 200 with an HTML page for every request."""

    def answer(self, method: str, path: str, auth: str) -> StubServer.Answer:
        return 200, b"<html><body>It works!</body></html>", "text/html", {}


class EchoStripe(StubServer):
    """A Stripe look-alike that echoes the API key everywhere; sessions ``vs_bad...`` fail."""

    SESSION: ClassVar[dict[str, Any]] = {
        "object": "identity.verification_session",
        "created": 1700000000,
        "livemode": False,
        "status": "requires_input",
        "type": "document",
    }

    def answer(self, method: str, path: str, auth: str) -> StubServer.Answer:
        key = auth.removeprefix("Bearer ")
        forms = key_forms(key)
        echo = " ".join(forms.values())
        headers = {"Request-Id": f"req_{key}", "Idempotency-Key": f"idem{forms['quoted']}"}
        route = path.split("?", 1)[0].rstrip("/")
        if route == "/v1/identity/verification_sessions":
            body: dict[str, Any] = {"object": "list", "data": [], "has_more": False, "url": route}
            return 200, json.dumps(body).encode(), "application/json", headers
        session_id = route.rsplit("/", 1)[-1]
        if session_id.startswith("vs_bad"):
            error = {
                "type": "invalid_request_error",
                "code": f"code_{key}",
                "param": forms["percent-upper"],
                "message": f"Invalid API Key provided: {echo}",
            }
            return 400, json.dumps({"error": error}).encode(), "application/json", headers
        session = {**self.SESSION, "id": session_id, "metadata": {"tier": "gold", "echo": echo}}
        return 200, json.dumps(session).encode(), "application/json", headers


class RefusingStripe(StubServer):
    """Stripe refusing the key: 401 with Stripe's error body for every request."""

    def answer(self, method: str, path: str, auth: str) -> StubServer.Answer:
        key = auth.removeprefix("Bearer ")
        error = {
            "type": "invalid_request_error",
            "message": f"Invalid API Key provided: {key[:8]}****{key[-4:]}",
        }
        headers = {"Request-Id": "req_refused"}
        return 401, json.dumps({"error": error}).encode(), "application/json", headers
