"""The container path: the Dockerfile's image and docker-compose.yml's services, run.

Where a container engine answers (docker or podman with a daemon), the image is built and the
fleet started for real: ``docker compose --profile staging up --build --scale worker=3``, a
small batch submitted through the workers, the demo in the image. Where none does (this
project's CI machines: the docker client only), the image's filesystem is built the way the
Dockerfile builds it (its ENV, COPY and ``uv sync`` lines, followed from the file itself, into
a directory that stands for ``/app``) and its entry point run as compose runs each service:
compose's environment, commands, secret file and healthchecks, with container paths mapped to
the test's directories.
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import closed_port, outside_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk_test_image0123456789abcdefSECRET"


# -- following the Dockerfile ------------------------------------------------------------------


@dataclass
class Stage:
    """One FROM stage: its instructions, as (instruction, arguments) pairs."""

    name: str
    steps: list[tuple[str, str]] = field(default_factory=list)


def dockerfile_stages(text: str) -> list[Stage]:
    """The Dockerfile's stages, continuation lines joined, ARG defaults substituted."""
    joined = re.sub(r"\\\n", " ", text)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        rest = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest.strip())
        if op == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif op == "FROM":
            stages.append(Stage(rest.split(" AS ")[-1] if " AS " in rest else "final"))
        else:
            stages[-1].steps.append((op, rest))
    return stages


def _env_pairs(rest: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(rest))


@dataclass
class Image:
    """The image's filesystem built under ``app`` (standing for /app) and its final ENV."""

    app: Path
    env: dict[str, str]
    entrypoint: list[str]

    def command(self, *args: str) -> list[str]:
        """The entry point (resolved on the image's PATH) with ``args``."""
        found = shutil.which(self.entrypoint[0], path=self.env["PATH"])
        assert found is not None, f"{self.entrypoint[0]} not on the image's PATH"
        return [found, *self.entrypoint[1:], *args]


def build_image(root: Path, mapped: dict[str, Path]) -> Image:
    """Run the Dockerfile's build stage here and assemble its final stage's environment.

    ``mapped`` turns container paths (/app, /data...) into the test's directories. The uv
    binary the build stage copies from uv's image is the uv on this machine's PATH.
    """
    build = _Build(root, mapped, outside_env(), mapped["/app"].parent)
    for stage in dockerfile_stages((root / "Dockerfile").read_text(encoding="utf-8")):
        for op, rest in stage.steps:
            build.step(stage, op, rest)
    return Image(mapped["/app"], build.env, build.entrypoint)


@dataclass
class _Build:
    root: Path
    mapped: dict[str, Path]
    env: dict[str, str]
    cwd: Path
    entrypoint: list[str] = field(default_factory=list)

    def here(self, value: str) -> str:
        """A container path (or a value holding some) as the test's path."""
        for inside, outside in self.mapped.items():
            value = re.sub(rf"(?<![\w/]){re.escape(inside)}(?=/|$|:)", str(outside), value)
        return value

    def step(self, stage: Stage, op: str, rest: str) -> None:
        """One instruction: ENV, WORKDIR, COPY (from the context), RUN (build stages only:
        the final stage's adds a user), ENTRYPOINT."""
        if op == "ENV":
            for name, value in _env_pairs(rest).items():
                self.env[name] = self.here(value).replace("$PATH", self.env.get("PATH", ""))
        elif op == "WORKDIR":
            self.cwd = Path(self.here(rest))
            self.cwd.mkdir(parents=True, exist_ok=True)
        elif op == "COPY" and "--from=" not in rest:
            *sources, target = [a for a in rest.split() if not a.startswith("--")]
            where = Path(self.here(target)) if target.startswith("/") else self.cwd / target
            _copy(self.root, sources, where)
        elif op == "RUN" and stage.name != "final":
            subprocess.run(rest, shell=True, cwd=self.cwd, env=self.env, check=True, timeout=600)
        elif op == "ENTRYPOINT":
            self.entrypoint = list(yaml.safe_load(rest))


def _copy(root: Path, sources: list[str], target: Path) -> None:
    for source in sources:
        path = root / source
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            destination = (
                target / path.name if str(target).endswith("/") or target.is_dir() else target
            )
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)


# -- following docker-compose.yml --------------------------------------------------------------


def compose_file() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return data


def service_env(service: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """A service's environment with ``${VAR...}`` taken from ``values`` (or left empty)."""

    def expand(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(3) or ""
            return values.get(name, default if match.group(2) == ":-" else "")

        return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, str(text))

    return {k: expand(v) for k, v in (service.get("environment") or {}).items()}


def engine() -> list[str] | None:
    """``docker compose`` (or podman's) when a container engine answers, else None."""
    for tool in ("docker", "podman"):
        if shutil.which(tool) is None:
            continue
        probe = subprocess.run([tool, "info"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [tool, "compose"]
    return None


@dataclass
class Running:
    """Processes started from the image, stopped at the end."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, image: Image, args: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                image.command(*args), env=env, cwd=image.app, stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _await_exit_code(command: list[str], env: dict[str, str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while subprocess.run(command, env=env, capture_output=True, timeout=30).returncode != 0:
        assert time.monotonic() < deadline, f"{command} never passed"
        time.sleep(0.5)


@pytest.fixture
def running() -> Iterator[Running]:
    found = Running()
    try:
        yield found
    finally:
        found.stop()


class TestImageWithoutAnEngine:
    def test_the_image_filesystem_runs_every_service_of_the_compose_file(
        self, tmp_path: Path, redis_url: str, running: Running, redis_client: Any
    ) -> None:
        """Built as the Dockerfile builds it, the entry point runs the staging emulator, three
        workers and beat as compose runs them (the key from the secret file, healthchecks
        passing), a small batch through them, and the demo."""
        if engine() is not None:
            pytest.skip("a container engine answers: TestImageWithAnEngine runs the real thing")
        # Given the image's filesystem and compose's settings for its services
        mapped = {"/app": tmp_path / "app", "/data": tmp_path / "data"}
        image = build_image(ROOT, mapped)
        services = compose_file()["services"]
        secret = tmp_path / "stripe_api_key"
        secret.write_text(KEY + "\n", encoding="utf-8")
        migrations = tmp_path / "migrations.toml"
        shutil.copy(ROOT / "examples" / "migrations.toml", migrations)
        port = closed_port()
        container = {
            "/run/secrets/stripe_api_key": str(secret),
            "/config/migrations.toml": str(migrations),
            "/tmp/vsbatch-alive": str(tmp_path / "alive"),
            "http://emulator:12111": f"http://127.0.0.1:{port}",
        }

        def env_of(name: str, **own: str) -> dict[str, str]:
            values = {"REDIS_PASSWORD": "unused", **own}
            found = service_env(services[name], values)
            found["VSBATCH_REDIS_URL"] = redis_url  # the compose Redis: the test's
            for k, v in found.items():
                found[k] = container.get(v, v)
            return {**image.env, **found}

        def args_of(name: str, *extra: str) -> list[str]:
            command = [container.get(a, a) for a in services[name]["command"]]
            return [*command, *extra]

        # When the staging emulator, three workers and beat run from the image
        emulator_args = args_of("emulator")
        emulator_args[emulator_args.index("0.0.0.0")] = "127.0.0.1"
        emulator_args[emulator_args.index("12111")] = str(port)
        running.start(image, emulator_args, env_of("emulator"), tmp_path / "emulator.log")
        staging = {"VSBATCH_STRIPE_API_BASE": f"http://127.0.0.1:{port}"}
        for n in range(3):
            worker_env = env_of("worker", **staging)
            worker_env["VSBATCH_HEALTH_FILE"] = str(tmp_path / f"worker{n}-alive")
            worker_args = args_of("worker")
            worker_args[worker_args.index("9808")] = str(closed_port())
            running.start(image, worker_args, worker_env, tmp_path / f"worker{n}.log")
        beat_env = env_of("beat", **staging)
        beat_env["VSBATCH_HEALTH_FILE"] = str(tmp_path / "beat-alive")
        running.start(image, args_of("beat"), beat_env, tmp_path / "beat.log")

        # Then each one's healthcheck passes, as compose runs it
        for name, alive in [("worker", f"worker{n}-alive") for n in range(3)] + [
            ("beat", "beat-alive")
        ]:
            check = [container.get(a, a) for a in services[name]["healthcheck"]["test"][1:]]
            check[check.index(str(tmp_path / "alive"))] = str(tmp_path / alive)
            check[0] = shutil.which("python", path=image.env["PATH"]) or "python"
            _await_exit_code(check, image.env)

        # ... a small batch goes through the workers to the emulator
        worker_env = env_of("worker", **staging)
        listed = subprocess.run(
            image.command("emulator", "sessions", "--url", f"http://127.0.0.1:{port}"),
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        ids = re.findall(r"\bvs_\w+", listed.stdout)[:25]
        batch_csv = tmp_path / "in.csv"
        batch_csv.write_text("id,metadata.k\n" + "".join(f"{i},v\n" for i in ids), "utf-8")
        submitted = subprocess.run(
            image.command("submit", str(batch_csv)),
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (0, 25) == (submitted.returncode, len(ids)), submitted.stderr
        watched = subprocess.run(
            image.command("status", submitted.stdout.strip(), "--watch"),
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert 0 == watched.returncode, watched.stdout + watched.stderr
        logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
        assert "SECRET" not in logs

        # ... and the demo runs in the image (its own embedded Redis, as docs/deploy.md says)
        demo_env = {**env_of("worker"), "VSBATCH_DATA_DIR": str(tmp_path / "demo")}
        del demo_env["VSBATCH_REDIS_URL"]
        demo = subprocess.run(
            image.command("demo"),
            env=demo_env,
            cwd=image.app,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert (1, True) == (demo.returncode, "succeeded" in demo.stdout), demo.stderr


class TestImageWithAnEngine:
    def test_compose_up_scales_to_three_workers_and_runs_a_batch_and_the_demo(
        self, tmp_path: Path
    ) -> None:
        """``docker compose --profile staging up --build --scale worker=3``: every service
        healthy, a small batch through the workers, the demo in the image."""
        compose = engine()
        if compose is None:
            pytest.skip("no container engine answers (docker/podman info): nothing to run on")
        secret = tmp_path / "stripe_api_key"
        secret.write_text(KEY, encoding="utf-8")
        secret.chmod(0o444)  # compose mounts it as it is; the image runs as uid 10001
        (tmp_path / "migrations.toml").write_text("", encoding="utf-8")
        env = {
            **outside_env(),
            "REDIS_PASSWORD": f"pw{uuid.uuid4().hex}",
            "REDIS_PORT": str(closed_port()),
            "VSBATCH_STRIPE_API_KEY_SOURCE": str(secret),
            "VSBATCH_MIGRATIONS_SOURCE": str(tmp_path / "migrations.toml"),
            "VSBATCH_STRIPE_API_BASE": "http://emulator:12111",
        }
        base = [*compose, "-p", f"vsbatch-test-{uuid.uuid4().hex[:8]}", "--profile", "staging"]

        def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*base, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
            )

        try:
            up = run("up", "-d", "--build", "--wait", "--scale", "worker=3", timeout=1800)
            assert 0 == up.returncode, up.stdout + up.stderr
            listed = run(
                "run", "--rm", "worker", "emulator", "sessions", "--url", "http://emulator:12111"
            )
            ids = re.findall(r"\bvs_\w+", listed.stdout)[:25]
            batch_csv = tmp_path / "in.csv"
            batch_csv.write_text("id,metadata.k\n" + "".join(f"{i},v\n" for i in ids), "utf-8")
            batch_csv.chmod(0o444)
            mount = f"{batch_csv}:/in.csv:ro"
            submitted = run("run", "--rm", "-v", mount, "worker", "submit", "/in.csv")
            assert (0, 25) == (submitted.returncode, len(ids)), submitted.stderr
            batch_id = submitted.stdout.strip().splitlines()[-1]
            watched = run("run", "--rm", "worker", "status", batch_id, "--watch")
            assert 0 == watched.returncode, watched.stdout + watched.stderr
            demo = run(
                "run",
                "--rm",
                "-e",
                "VSBATCH_REDIS_URL=",
                "-e",
                "VSBATCH_DATA_DIR=/tmp/demo",
                "worker",
                "demo",
            )
            assert (1, True) == (demo.returncode, "succeeded" in demo.stdout), demo.stderr
        finally:
            run("down", "-v", "--remove-orphans", timeout=300)
