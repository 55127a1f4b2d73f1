"""The deployment files: docker-compose.yml against the Compose specification (offline, with
check-jsonschema's vendored schema) and the facts the fleet relies on, plus the Dockerfile."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file, parsed (anchors and merge keys resolved)."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


class TestComposeSpecification:
    def test_compose_file_validates_against_the_compose_spec(self) -> None:
        """check-jsonschema accepts the file with its built-in (vendored) Compose schema."""
        tool = Path(sys.executable).with_name("check-jsonschema")

        result = subprocess.run(
            [str(tool), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert 0 == result.returncode, result.stdout + result.stderr

    def test_services_and_profiles(self, compose: dict[str, Any]) -> None:
        """redis, worker and beat always run; the emulator is staging-only, Flower optional."""
        profiles = {name: s.get("profiles", []) for name, s in compose["services"].items()}

        assert {
            "redis": [],
            "worker": [],
            "beat": [],
            "emulator": ["staging"],
            "flower": ["flower"],
        } == profiles


class TestRedisService:
    def test_redis_is_append_only_and_never_evicts(self, compose: dict[str, Any]) -> None:
        """The ledger and queue survive restarts (AOF) and are never evicted."""
        command = _command(compose["services"]["redis"])

        assert ("--appendonly yes", "--maxmemory-policy noeviction") == tuple(
            flag
            for flag in ("--appendonly yes", "--maxmemory-policy noeviction")
            if flag in command
        )
        assert "/data" in " ".join(compose["services"]["redis"]["volumes"])

    def test_redis_password_comes_from_the_environment(self, compose: dict[str, Any]) -> None:
        """--requirepass reads REDIS_PASSWORD, which has a documented default in .env.example."""
        redis = compose["services"]["redis"]

        assert '--requirepass "$$REDIS_PASSWORD"' in _command(redis)
        assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
        assert re.search(r"^REDIS_PASSWORD=\S+$", ENV_EXAMPLE.read_text(), re.MULTILINE)

    def test_redis_has_an_authenticated_healthcheck(self, compose: dict[str, Any]) -> None:
        """The healthcheck pings with the password, so workers wait for a usable server."""
        check = compose["services"]["redis"]["healthcheck"]

        assert "REDISCLI_AUTH" in " ".join(check["test"]) and "ping" in " ".join(check["test"])


class TestVsbatchServices:
    @pytest.mark.parametrize("name", ["worker", "beat"])
    def test_service_waits_for_healthy_redis(self, compose: dict[str, Any], name: str) -> None:
        """Workers and beat start only once Redis answers its healthcheck."""
        assert {"redis": {"condition": "service_healthy"}} == compose["services"][name][
            "depends_on"
        ]

    @pytest.mark.parametrize("name", ["worker", "beat"])
    def test_redis_url_carries_the_password(self, compose: dict[str, Any], name: str) -> None:
        """VSBATCH_REDIS_URL is built from REDIS_PASSWORD, pointing at the redis service."""
        url = compose["services"][name]["environment"]["VSBATCH_REDIS_URL"]

        assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379/0", url)

    def test_stripe_key_comes_from_a_secret_file(self, compose: dict[str, Any]) -> None:
        """The key is a compose secret read through VSBATCH_STRIPE_API_KEY_FILE, never an
        environment variable (``docker inspect`` shows those) nor written in the file."""
        worker = compose["services"]["worker"]
        environment = worker["environment"]

        assert (["stripe_api_key"], "/run/secrets/stripe_api_key") == (
            worker["secrets"],
            environment["VSBATCH_STRIPE_API_KEY_FILE"],
        )
        assert {"STRIPE_API_KEY", "VSBATCH_STRIPE_API_KEY"}.isdisjoint(environment)
        assert compose["secrets"]["stripe_api_key"]["file"].endswith("secrets/stripe_api_key}")
        assert not re.search(r"[sr]k_(test|live)_[A-Za-z0-9]{8,}", COMPOSE.read_text())

    def test_worker_is_scalable(self, compose: dict[str, Any]) -> None:
        """No container name and no published port: ``--scale worker=4`` works."""
        worker = compose["services"]["worker"]

        assert ("worker", None, None) == (
            _command(worker).split()[0],
            worker.get("container_name"),
            worker.get("ports"),
        )
        assert "--metrics-port 9808" in _command(worker)

    def test_beat_runs_vsbatch_beat(self, compose: dict[str, Any]) -> None:
        """beat runs ``vsbatch beat`` on a mounted migrations file."""
        beat = compose["services"]["beat"]

        assert "beat" == _command(beat).split()[0]
        assert "/config/migrations.toml" == beat["volumes"][0]["target"]

    def test_workers_read_the_same_migrations_file_as_beat(self, compose: dict[str, Any]) -> None:
        """A tick names a migration only: workers mount beat's file and point to it."""
        services = compose["services"]
        worker, beat = services["worker"], services["beat"]

        assert (beat["volumes"], "/config/migrations.toml") == (
            worker.get("volumes"),
            worker["environment"].get("VSBATCH_MIGRATIONS_FILE"),
        )

    def test_emulator_is_internal_only(self, compose: dict[str, Any]) -> None:
        """The staging emulator binds 0.0.0.0 inside the network and publishes no port."""
        emulator = compose["services"]["emulator"]

        assert _command(emulator).startswith("emulator --host 0.0.0.0")
        assert None is emulator.get("ports")


def _seconds(duration: str) -> float:
    """A compose duration ("150s", "2m30s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration))


class TestRuntimeContract:
    @pytest.mark.parametrize("name", ["worker", "beat"])
    def test_healthcheck_reads_the_health_file_the_process_touches(
        self, compose: dict[str, Any], name: str
    ) -> None:
        """worker and beat are healthy while the file VSBATCH_HEALTH_FILE names is fresh:
        a worker touches it every heartbeat, beat every tick (both at most every 5 s)."""
        service = compose["services"][name]
        test = service["healthcheck"]["test"]

        assert ["CMD", "python", "-m", "vsbatch.ops.health"] == test[:4]
        assert service["environment"]["VSBATCH_HEALTH_FILE"] == test[4]
        assert 15 <= float(test[5]) <= _seconds(service["healthcheck"]["interval"]) * 3

    def test_worker_grace_outlasts_its_warm_shutdown(self, compose: dict[str, Any]) -> None:
        """A stopping worker ends the row each thread is on: at most one row's retry window
        plus two requests' deadlines (the defaults), which the grace period must exceed."""
        from vsbatch.config import Settings

        defaults = Settings(_env_file=None)
        request = defaults.http_timeout + defaults.http_connect_timeout
        longest_row = defaults.retry_max_seconds + 2 * request

        assert longest_row < _seconds(compose["services"]["worker"]["stop_grace_period"])

    def test_every_service_has_resource_limits(self, compose: dict[str, Any]) -> None:
        """CPU and memory limits on every service; Redis's maxmemory below its limit, so it
        refuses writes (which vsbatch reports) before the kernel kills it."""
        limits = {n: s["deploy"]["resources"]["limits"] for n, s in compose["services"].items()}

        assert [] == [n for n, lim in limits.items() if not {"cpus", "memory"} <= set(lim)]
        assert "--maxmemory ${REDIS_MAXMEMORY:-1536mb}" in _command(compose["services"]["redis"])
        assert "2g" == limits["redis"]["memory"]


class TestDockerfile:
    def test_base_image_is_pinned_by_digest(self) -> None:
        """Both stages start from one base image named by tag and sha256 digest."""
        text = DOCKERFILE.read_text()
        pinned = re.search(r"^ARG PYTHON_IMAGE=(python:[\w.-]+@sha256:[0-9a-f]{64})$", text, re.M)

        assert pinned is not None
        assert ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"] == re.findall(
            r"^FROM (.+)$", text, re.M
        )

    def test_image_carries_the_demo_example(self) -> None:
        """``vsbatch demo`` reads examples/updates.csv from /app: copied, and let through
        .dockerignore."""
        ignore = (ROOT / ".dockerignore").read_text().splitlines()

        assert "COPY --chown=root:root examples/updates.csv /app/examples/updates.csv" in (
            DOCKERFILE.read_text()
        )
        assert "!examples/updates.csv" in ignore
        assert ignore.index("examples/*") < ignore.index("!examples/updates.csv")

    def test_image_runs_as_a_non_root_user(self) -> None:
        """The last USER is a numeric non-zero uid."""
        users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)

        assert users and users[-1].split(":")[0] not in ("0", "root")

    def test_image_installs_from_the_lock_without_dev_dependencies(self) -> None:
        """uv sync --locked --no-dev builds the environment; vsbatch is the entry point."""
        text = DOCKERFILE.read_text()

        assert "uv sync --locked --no-dev" in text
        assert 'ENTRYPOINT ["vsbatch"]' in text
        assert not re.search(r"STRIPE|[sr]k_(test|live)_", text)
