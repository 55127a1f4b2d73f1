"""Secrets after a real batch: the API key never lands in Redis, logs or reports, PII is
redacted on request, and a pickled message is refused by a real worker that keeps serving."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from tests.conftest import TEST_API_KEY
from tests.e2e.celery_messages import envelope
from tests.e2e.conftest import Workers, wait_done
from tests.helpers import metadata_csv
from vsbatch.bootstrap import Deps
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import Outcome
from vsbatch.worker.celery_app import QUEUE
from vsbatch.worker.tasks import enqueue_chunk

EMAILS = ("ada.lovelace@example.com", "grace.hopper@example.org", "alan.turing@example.net")
PHONES = ("+15555550100", "+442071838750")
PII = (*EMAILS, *PHONES)
FORMATS = ("table", "json", "csv", "html")


def _csv(emulator: Any, path: Path) -> Path:
    """Rows that succeed, fail (unknown session) and are rejected, all carrying PII."""
    ready = emulator.seed(count=3)
    missing = "vs_" + "M" * 24
    path.write_text(
        "id,metadata.tier,options.document.require_matching_selfie,"
        "provided_details.email,provided_details.phone\n"
        f"{ready[0]},gold,,{EMAILS[0]},{PHONES[0]}\n"
        f"{ready[1]},,,{EMAILS[1]},\n"
        f"{missing},,,{EMAILS[2]},{PHONES[1]}\n"
        f"{ready[2]},,maybe,{EMAILS[0]},{PHONES[0]}\n",  # rejected: its cells are kept
        encoding="utf-8",
    )
    return path


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vsbatch", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _exports(env: dict[str, str], batch_id: str, out: Path, *flags: str) -> dict[str, str]:
    """Every report format and the failures file, written by the CLI (run in parallel)."""
    procs = {fmt: _cli(env, "report", batch_id, "--format", fmt, *flags) for fmt in FORMATS}
    procs["failures"] = _cli(env, "failures", batch_id, *flags)
    texts = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        # The batch has a failed row: a report exits 1, as run would; an export exits 0.
        assert proc.returncode == (0 if name == "failures" else 1), stderr
        texts[name] = stdout + stderr
        (out / f"{name}{''.join(flags)}.out").write_text(texts[name], encoding="utf-8")
    return texts


def _dump_redis(client: redis.Redis) -> bytes:
    """Every key and every value of the database, whatever its type, as one blob."""
    parts: list[bytes] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        parts.append(key)
        if kind not in _VALUES_BY_TYPE:
            raise AssertionError(f"unexpected key type {kind} for {key!r}")
        parts += _VALUES_BY_TYPE[kind](client, key)
    return b"\n".join(parts)


def _hash_values(client: redis.Redis, key: bytes) -> list[bytes]:
    return [part for pair in client.hgetall(key).items() for part in pair]


def _stream_values(client: redis.Redis, key: bytes) -> list[bytes]:
    parts: list[bytes] = []
    for entry_id, fields in client.xrange(key):
        parts.append(entry_id)
        for field, value in fields.items():
            parts += [field, value]
    return parts


# What _dump_redis reads of a key, by the key's Redis type.
_VALUES_BY_TYPE: dict[str, Callable[[redis.Redis, bytes], list[bytes]]] = {
    "string": lambda client, key: [client.get(key) or b""],
    "hash": _hash_values,
    "list": lambda client, key: client.lrange(key, 0, -1),
    "set": lambda client, key: list(client.smembers(key)),
    "zset": lambda client, key: [m for m, _ in client.zrange(key, 0, -1, withscores=True)],
    "stream": _stream_values,
}


def _run_batch(
    emulator: Any, workers: Workers, env: dict[str, str], tmp_path: Path, **worker_env: str
) -> tuple[str, str]:
    """A full batch through a real worker and a ``vsbatch submit`` producer process."""
    logged = {"VSBATCH_LOG_LEVEL": "DEBUG", "VSBATCH_LOG_FORMAT": "json", **worker_env}
    workers.start(concurrency=4, **logged)
    submit = subprocess.run(
        [sys.executable, "-m", "vsbatch", "submit", str(_csv(emulator, tmp_path / "in.csv"))],
        env={**env, **logged},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 2 == submit.returncode, submit.stderr  # the file has a rejected row
    return submit.stdout.strip(), submit.stderr


class TestNoApiKeyAnywhere:
    def test_key_absent_from_redis_logs_and_every_report(
        self,
        emulator: Any,
        workers: Workers,
        producer: Deps,
        env: dict[str, str],
        redis_client: redis.Redis,
        tmp_path: Path,
    ) -> None:
        """After a full batch the key is in no Redis value, log line or report format."""
        # Given a finished batch with successes, a failure and a rejection
        batch_id, producer_log = _run_batch(emulator, workers, env, tmp_path)
        batch = wait_done(producer, batch_id)
        assert (2, 1, 1) == tuple(
            batch.counts[o] for o in (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.REJECTED)
        )

        # When everything a person or an attacker could read is collected
        exports = _exports(env, batch_id, tmp_path)
        workers.stop_all()
        worker_log = (tmp_path / "worker0.log").read_text(encoding="utf-8")
        blob = _dump_redis(redis_client)

        # Then the key is nowhere (and the worker did log row outcomes at DEBUG level)
        secret = TEST_API_KEY
        assert '"outcome": "succeeded"' in worker_log
        assert secret.encode() not in blob
        assert secret not in worker_log
        assert secret not in producer_log
        assert [] == [name for name, text in exports.items() if secret in text]

    def test_batch_keys_expire_within_the_retention(
        self, emulator: Any, workers: Workers, producer: Deps, env: dict[str, str], tmp_path: Path
    ) -> None:
        """Every key a finished batch still has carries a TTL no longer than the ledger
        retention."""
        batch_id, _ = _run_batch(emulator, workers, env, tmp_path)
        wait_done(producer, batch_id)

        ttls = {key: producer.redis.ttl(key) for key in producer.ledger.keys.batch_keys(batch_id)}
        ttls = {key: ttl for key, ttl in ttls.items() if ttl != -2}  # -2: gone (the sessions hash)

        retention = producer.settings.ledger_retention_days * 86400
        assert [] == [k for k, ttl in ttls.items() if not 0 < ttl <= retention]


class TestPiiRedaction:
    def test_redacted_logs_and_exports_hold_no_email_or_phone(
        self, emulator: Any, workers: Workers, producer: Deps, env: dict[str, str], tmp_path: Path
    ) -> None:
        """With VSBATCH_REDACT_PII=true the logs, and exports made with --redact, hold no PII."""
        # Given a batch worked with redaction on
        batch_id, producer_log = _run_batch(
            emulator, workers, env, tmp_path, VSBATCH_REDACT_PII="true"
        )
        wait_done(producer, batch_id)

        # When every export is made with --redact, and once without as a control
        redacted = _exports(env, batch_id, tmp_path, "--redact")
        clear = _exports(env, batch_id, tmp_path, "--no-redact")
        workers.stop_all()
        worker_log = (tmp_path / "worker0.log").read_text(encoding="utf-8")

        # Then no email or phone appears, though the unredacted exports do hold them
        leaks = {
            name: [p for p in PII if p in text]
            for name, text in {**redacted, "worker": worker_log, "producer": producer_log}.items()
        }
        assert {name: [] for name in leaks} == leaks
        assert set(PII) <= {p for p in PII if p in clear["json"] + clear["failures"]}
        assert "[redacted-email]" in redacted["failures"]


def _pickled_envelope(payload: object) -> bytes:
    """A kombu Redis-transport message whose body is a pickle, as an attacker would push it."""
    _, message = envelope(
        "vsbatch.process_chunk",
        pickle.dumps(payload),
        content_type="application/x-python-serialize",
        content_encoding="binary",
    )
    return message.encode()


class _CreatesFile:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


class TestPickleRefused:
    def test_pickled_message_is_rejected_and_the_worker_keeps_serving(
        self,
        emulator: Any,
        workers: Workers,
        producer: Deps,
        redis_client: redis.Redis,
        tmp_path: Path,
    ) -> None:
        """A pickle on the queue is dropped unexecuted; a normal batch then completes."""
        # Given a running worker and a pickled message on its queue
        proof = tmp_path / "pwned"
        workers.start(concurrency=2)
        redis_client.lpush(QUEUE, _pickled_envelope(_CreatesFile(proof)))

        # When the queue drains and a normal batch follows
        deadline = time.monotonic() + 30
        while redis_client.llen(QUEUE) and time.monotonic() < deadline:
            time.sleep(0.1)
        ids = emulator.seed(count=3)
        csv = tmp_path / "in.csv"
        metadata_csv(csv, ids)
        batch = wait_done(producer, submit_csv(producer, csv, enqueue_chunk).id, timeout=60)
        workers.stop_all()

        # Then the pickle never ran, was refused loudly, and the batch succeeded
        log = (tmp_path / "worker0.log").read_text(encoding="utf-8")
        assert False is proof.exists()
        assert "ContentDisallowed" in log or "disallowed" in log.lower()
        assert 3 == batch.counts[Outcome.SUCCEEDED]
        assert 0 == redis_client.llen(QUEUE)
