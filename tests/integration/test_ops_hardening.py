"""Hardening as a user meets it: one-line errors with exit code 2 for every misconfiguration,
live keys behind ``--live``, the emulator on loopback, and TLS Redis URLs for both clients."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_API_KEY
from tests.helpers import closed_port as _closed_port
from tests.helpers import outside_env, run_vsbatch
from vsbatch.bootstrap import redis_client
from vsbatch.config import Settings
from vsbatch.worker.celery_app import app, broker_ssl, configure

LIVE_KEY = "sk_live_vsbatch0123456789abcdefLIVE"


def _vsbatch(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_vsbatch(outside_env(**env), *args, timeout=60)


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    """A valid one-row update file."""
    path = tmp_path / "in.csv"
    path.write_text("id,metadata.a\nvs_" + "A" * 24 + ",1\n", encoding="utf-8")
    return path


class TestMisconfiguration:
    @pytest.mark.parametrize(
        ("env", "expected"),
        [
            ({"VSBATCH_REDIS_URL": "http://x"}, "invalid VSBATCH_REDIS_URL"),
            ({"VSBATCH_REDIS_URL": "redis://localhost:notaport/0"}, "invalid VSBATCH_REDIS_URL"),
            ({"VSBATCH_REDIS_URL": "redis://127.0.0.1:{closed}/0"}, "cannot reach Redis"),
            ({"VSBATCH_STRIPE_API_KEY": ""}, "no Stripe API key"),
            ({"VSBATCH_CONCURRENCY": "many"}, "invalid setting VSBATCH_CONCURRENCY"),
            ({"VSBATCH_RATE_LIMIT": "-5"}, "invalid setting VSBATCH_RATE_LIMIT"),
            ({"VSBATCH_METRICS_PORT": "70000"}, "invalid setting VSBATCH_METRICS_PORT"),
        ],
        ids=["scheme", "port", "unreachable", "no-key", "concurrency", "rate", "metrics-port"],
    )
    def test_misconfiguration_exits_2_with_one_line(
        self, csv_file: Path, redis_url: str, env: dict[str, str], expected: str
    ) -> None:
        """A bad setting ends ``submit`` with exit code 2 and one line, never a traceback."""
        settings = {"VSBATCH_REDIS_URL": redis_url, "VSBATCH_STRIPE_API_KEY": TEST_API_KEY}
        settings.update({k: v.format(closed=_closed_port()) for k, v in env.items()})
        started = time.monotonic()

        result = _vsbatch("submit", str(csv_file), **settings)

        lines = result.stderr.strip().splitlines()
        assert (2, 1) == (result.returncode, len(lines)), result.stderr
        assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
        assert "Traceback" not in result.stderr + result.stdout
        assert time.monotonic() - started < 20

    def test_redis_password_never_printed(self) -> None:
        """An unreachable Redis URL is echoed with its password masked."""
        url = f"redis://:hunter2secret@127.0.0.1:{_closed_port()}/0"

        result = _vsbatch("status", VSBATCH_REDIS_URL=url)

        assert 2 == result.returncode
        assert "hunter2secret" not in result.stderr
        assert "***@127.0.0.1" in result.stderr


class TestLiveKeys:
    def test_live_key_without_live_flag_is_refused(self, csv_file: Path, redis_url: str) -> None:
        """A live-mode key needs --live: exit 2 and a one-line reason, key not echoed."""
        result = _vsbatch(
            "submit", str(csv_file), VSBATCH_REDIS_URL=redis_url, VSBATCH_STRIPE_API_KEY=LIVE_KEY
        )

        assert 2 == result.returncode
        assert "error: this is a live-mode key: add --live to update real sessions" == (
            result.stderr.strip()
        )

    def test_live_flag_lets_a_live_key_through(self, redis_url: str, tmp_path: Path) -> None:
        """With --live the key is accepted and the command goes on (here: to a missing file)."""
        result = _vsbatch(
            "submit",
            str(tmp_path / "absent.csv"),
            "--live",
            VSBATCH_REDIS_URL=redis_url,
            VSBATCH_STRIPE_API_KEY=LIVE_KEY,
        )

        assert 2 == result.returncode
        assert "cannot read" in result.stderr
        assert LIVE_KEY not in result.stderr


class TestEmulatorBinding:
    def test_emulator_listens_on_loopback_only_by_default(self) -> None:
        """``vsbatch emulator`` binds 127.0.0.1 unless --host says otherwise."""
        port = _closed_port()
        base = outside_env()
        proc = subprocess.Popen(
            [sys.executable, "-m", "vsbatch", "emulator", "--port", str(port)],
            env=base,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            listening = _wait_listening(port)
        finally:
            proc.terminate()
            proc.wait(timeout=10)

        assert ["127.0.0.1"] == listening


def _wait_listening(port: int, timeout: float = 20.0) -> list[str]:
    """The IPv4/IPv6 addresses with a listening socket on ``port`` (from /proc/net)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hexport = local.rpartition(":")
                if state == "0A" and int(hexport, 16) == port:
                    found.append(_address(address))
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def _address(hexaddr: str) -> str:
    if len(hexaddr) == 8:
        return socket.inet_ntoa(bytes.fromhex(hexaddr)[::-1])
    words = bytes.fromhex(hexaddr)
    return socket.inet_ntop(
        socket.AF_INET6, b"".join(words[i : i + 4][::-1] for i in range(0, 16, 4))
    )


class TestTlsUrls:
    def test_rediss_url_requires_certificates_for_celery(self) -> None:
        """A bare rediss:// URL makes Celery verify certificates, like redis-py does."""
        assert {"ssl_cert_reqs": ssl.CERT_REQUIRED} == broker_ssl("rediss://:pw@redis:6380/0")

    def test_rediss_url_options_reach_celery(self) -> None:
        """The URL's ssl_cert_reqs and certificate paths are handed to Celery as well."""
        url = "rediss://:pw@redis:6380/0?ssl_cert_reqs=none&ssl_ca_certs=/etc/ca.pem"

        assert {"ssl_cert_reqs": ssl.CERT_NONE, "ssl_ca_certs": "/etc/ca.pem"} == broker_ssl(url)

    def test_plain_url_has_no_broker_ssl(self, redis_url: str) -> None:
        """redis:// leaves Celery's broker_use_ssl unset (and resets an earlier TLS choice)."""
        configure(Settings(_env_file=None, redis_url="rediss://:pw@redis:6380/0"))
        configure(Settings(_env_file=None, redis_url=redis_url))

        assert None is app.conf.broker_use_ssl

    def test_redis_py_uses_tls_and_the_password(self) -> None:
        """redis-py gets an SSL connection class and the URL's password from rediss://."""
        client = redis_client("rediss://:s3cret@redis:6380/0")
        pool = client.connection_pool

        assert ("SSLConnection", "s3cret") == (
            pool.connection_class.__name__,
            pool.connection_kwargs["password"],
        )
