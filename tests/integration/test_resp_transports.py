"""``rediss://`` and ``unix://`` through the small client (``store.resp``), for real.

The embedded Valkey has neither TLS nor a unix socket here, so a forwarder in a thread
accepts them (TLS with a certificate that ``openssl`` makes for 127.0.0.1; a unix socket in a
temporary directory) and passes the bytes on to the test Redis.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from vsbatch.config import Settings
from vsbatch.errors import ConfigError
from vsbatch.store import resp
from vsbatch.worker.runtime import reader_for


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (made by ``openssl``)."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is needed to make the TLS test's certificate")
        pytest.skip("no openssl to make a certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
    ]
    command += ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2"]
    command += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            sock.close()


class Forwarder:
    """Accepts connections (TLS on a loopback port, or a unix socket at ``path``) and
    forwards their plain bytes to ``backend``."""

    def __init__(
        self, backend: tuple[str, int], *, tls: tuple[Path, Path] | None, path: Path | None
    ) -> None:
        self._backend = backend
        self._context: ssl.SSLContext | None = None
        if tls is not None:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(*tls)
        if path is None:
            self._listener = socket.create_server(("127.0.0.1", 0))
        else:
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(str(path))
            self._listener.listen()
        self.port = self._listener.getsockname()[1] if path is None else 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        if self._context is not None:
            try:
                client = self._context.wrap_socket(client, server_side=True)
            except OSError:
                client.close()  # the client refused our certificate
                return
        backend = socket.create_connection(self._backend)
        threading.Thread(target=_pump, args=(backend, client), daemon=True).start()
        _pump(client, backend)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture(scope="module")
def tls(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``(rediss URL of the test Redis, the certificate)``: database 0, its password."""
    cert, key = _certificate(tmp_path_factory.mktemp("tls"))
    parts = urlsplit(redis_url)
    terminator = Forwarder((parts.hostname or "", parts.port or 6379), tls=(cert, key), path=None)
    userinfo = parts.netloc.rpartition("@")[0]
    try:
        yield f"rediss://{userinfo}@127.0.0.1:{terminator.port}/0", cert
    finally:
        terminator.close()


def test_verified_tls_with_the_urls_ca_reads_as_redis_py(
    tls: tuple[str, Path], redis_client: redis.Redis
) -> None:
    """``?ssl_ca_certs=`` trusts the server's CA: both clients read the same through TLS."""
    url, cert = tls
    redis_client.hset("h", mapping={"a": "1"})
    verified = f"{url}?ssl_ca_certs={cert}"
    reference = redis.Redis.from_url(verified)
    client = resp.connect(verified)
    assert client is not None
    try:
        assert reference.hgetall("h") == client.hgetall("h")
    finally:
        client.close()
        reference.close()


def test_unknown_ca_is_refused_in_one_line(tls: tuple[str, Path]) -> None:
    """Without the CA the certificate is not trusted: no connection, one ConfigError line."""
    url, _ = tls

    with pytest.raises(ConfigError, match=r"^cannot reach Redis at rediss://\*\*\*@"):
        resp.connect(url)


def test_cert_reqs_none_skips_verification(
    tls: tuple[str, Path], redis_client: redis.Redis
) -> None:
    """``?ssl_cert_reqs=none`` connects to an untrusted server, as with redis-py."""
    url, _ = tls
    redis_client.set("s", "x")
    client = resp.connect(f"{url}?ssl_cert_reqs=none")
    assert client is not None
    try:
        assert b"x" == client.get("s")
    finally:
        client.close()


def test_unix_socket_with_the_password_in_the_userinfo(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """``unix://:PASSWORD@/path/to/socket`` reads as redis-py reads it."""
    parts = urlsplit(redis_url)
    path = tmp_path / "redis.sock"
    forwarder = Forwarder((parts.hostname or "", parts.port or 6379), tls=None, path=path)
    redis_client.zadd("z", {"a": 1, "b": 2})
    url = f"unix://{parts.netloc.rpartition('@')[0]}@{path}"
    reference = redis.Redis.from_url(url)
    client = resp.connect(url)
    assert client is not None
    try:
        assert reference.zrevrange("z", 0, -1) == client.zrevrange("z", 0, -1)
    finally:
        client.close()
        reference.close()
        forwarder.close()


@pytest.mark.parametrize(("query", "kind"), [("", resp.RespClient), ("?db=0", redis.Redis)])
def test_reader_uses_the_small_client_where_it_can(
    query: str, kind: type, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """``reader_for`` reads through the small client, and through redis-py for a URL the small
    client leaves to it (a unix socket's ``?db=``): the same batches either way."""
    parts = urlsplit(redis_url)
    path = tmp_path / "redis.sock"
    forwarder = Forwarder((parts.hostname or "", parts.port or 6379), tls=None, path=path)
    url = f"unix://{parts.netloc.rpartition('@')[0]}@{path}{query}"
    settings = Settings(_env_file=None, redis_url=url, data_dir=tmp_path / "data")
    try:
        with reader_for(settings) as reader:
            found = (type(reader.client), reader.list_batches())
    finally:
        forwarder.close()

    assert (kind, []) == found
