"""Hand-pushed Celery messages on the Redis broker: a real worker refuses every forged, unknown,
malformed or undecodable one in one log line, runs none of them, and keeps serving."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import redis

from tests.e2e.celery_messages import envelope
from tests.e2e.conftest import Workers, wait_done
from tests.helpers import metadata_csv
from vsbatch.bootstrap import Deps
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import NewRow, Outcome
from vsbatch.worker.celery_app import QUEUE
from vsbatch.worker.tasks import enqueue_chunk

# A migration that would write to every session with the worker's API key.
FORGED_SPEC = """
[[migration]]
name = "forged"
schedule = "1m"

[migration.select]
status = "requires_input"

[[migration.action]]
op = "set"
values = { owned = "yes" }
"""

# The worker's own file: one scheduled and one manual migration, neither of which matches.
WORKER_SPEC = """
[[migration]]
name = "nightly"
schedule = "0 3 * * *"
select = { metadata_present = ["never"] }
action = [{ op = "unset", keys = ["never"] }]

[[migration]]
name = "manual"
select = { metadata_present = ["never"] }
action = [{ op = "unset", keys = ["never"] }]
"""

GOOD_ID = "b_0000000000abcde"


def call(task: str, *args: Any, **kwargs: Any) -> tuple[str, str]:
    """A well-formed message calling ``task`` with these arguments."""
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return envelope(task, json.dumps([list(args), kwargs, embed]).encode())


def chunk_body() -> bytes:
    """A valid chunk call's body (the hostile part is elsewhere in the message)."""
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return json.dumps([[GOOD_ID, [1]], {}, embed]).encode()


HOSTILE = {
    "forged spec": call("vsbatch.migration_tick", "forged", FORGED_SPEC),
    "unknown migration": call("vsbatch.migration_tick", "no-such-migration"),
    "manual migration": call("vsbatch.migration_tick", "manual"),
    "tick name not a string": call("vsbatch.migration_tick", {"name": "x"}),
    "unknown task": call("os.system", "touch /tmp/owned"),
    "body not JSON": envelope("vsbatch.process_chunk", b"{not json"),
    "body not a call": envelope("vsbatch.process_chunk", b'{"rows": [1]}'),
    "body a short list": envelope("vsbatch.process_chunk", b"[1]"),
    "tick body null": envelope("vsbatch.migration_tick", b"null"),
    "task name not a string": envelope(["vsbatch.process_chunk"], chunk_body()),
    "eta not a date": envelope("vsbatch.process_chunk", chunk_body(), eta="tomorrow"),
    "retries not a number": envelope("vsbatch.process_chunk", chunk_body(), retries="many"),
    "callbacks not a list": envelope(
        "vsbatch.process_chunk",
        json.dumps([[GOOD_ID, [1]], {}, {"callbacks": 5}]).encode(),
    ),
    "chain to another task": envelope(
        "vsbatch.process_chunk",
        json.dumps(
            [[GOOD_ID, [1]], {}, {"chain": [{"task": "vsbatch.migration_tick", "args": ["x"]}]}]
        ).encode(),
    ),
    "chunk without arguments": call("vsbatch.process_chunk"),
    "batch id not a ledger id": call("vsbatch.process_chunk", "../../etc", [1]),
    "row not a number": call("vsbatch.process_chunk", GOOD_ID, ["1; drop"]),
    "negative row": call("vsbatch.process_chunk", GOOD_ID, [-1]),
    "too many rows": call("vsbatch.process_chunk", GOOD_ID, list(range(1, 100_002))),
    "unknown option": call("vsbatch.process_chunk", GOOD_ID, [1], {"exec": "x"}),
    "option of the wrong type": call(
        "vsbatch.process_chunk", GOOD_ID, [1], {"lock_wait": "forever"}
    ),
}


def _held_message_ids(deps: Deps) -> set[str]:
    """Ids of the chunk messages that live workers record as held (``liveness``)."""
    keys = deps.ledger.keys
    nodes = {as_text(n) for n in deps.redis.smembers(keys.nodes)}
    return {as_text(m) for node in nodes for m in deps.redis.hkeys(keys.held(node))}


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _lines_naming(log: str, task_id: str) -> list[str]:
    return [line for line in log.splitlines() if task_id in line]


class TestHostileMessages:
    def test_each_is_refused_in_one_line_and_a_real_batch_follows(
        self,
        emulator: Any,
        workers: Workers,
        producer: Deps,
        redis_client: redis.Redis,
        tmp_path: Path,
    ) -> None:
        """Forged, unknown and malformed messages run nothing, log one line each, no traceback."""
        # Given sessions the forged migration would change, and a running worker
        ids = emulator.seed(count=3)
        spec = tmp_path / "migrations.toml"
        spec.write_text(WORKER_SPEC, encoding="utf-8")
        workers.start(concurrency=2, VSBATCH_MIGRATIONS_FILE=str(spec))
        log_path = tmp_path / "worker0.log"

        # When every hostile message is pushed onto the worker's queue
        for _, raw in HOSTILE.values():
            redis_client.lpush(QUEUE, raw)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            log = log_path.read_text(encoding="utf-8")
            if all(_lines_naming(log, task_id) for task_id, _ in HOSTILE.values()):
                break
            time.sleep(0.2)
        applied = emulator.stats()["applied_total"]
        # ... and a legitimate batch follows
        csv = tmp_path / "in.csv"
        metadata_csv(csv, ids)
        batch = wait_done(producer, submit_csv(producer, csv, enqueue_chunk).id, timeout=60)
        held = _held_message_ids(producer)
        workers.stop_all()
        log = log_path.read_text(encoding="utf-8")

        # Then nothing was applied, each message got exactly one line, there was no traceback,
        # none is held for resending should the worker die, and the batch succeeded
        lines = {what: len(_lines_naming(log, task_id)) for what, (task_id, _) in HOSTILE.items()}
        assert 0 == applied
        assert {what: 1 for what in HOSTILE} == lines
        assert "Traceback" not in log
        assert set() == held & {task_id for task_id, _ in HOSTILE.values()}
        assert {Outcome.SUCCEEDED: 3} == {k: v for k, v in batch.counts.items() if v}


class TestNotAnEnvelope:
    def test_raw_garbage_on_the_queue_is_dropped_and_the_worker_keeps_serving(
        self,
        emulator: Any,
        workers: Workers,
        producer: Deps,
        redis_client: redis.Redis,
        tmp_path: Path,
    ) -> None:
        """Bytes that are not a kombu message at all do not stop the worker or loop."""
        # Given a running worker and garbage pushed onto its queue
        ids = emulator.seed(count=2)
        workers.start(concurrency=2)
        for raw in (b"not json at all", b'{"json": "but no headers"}', b"[1, 2]"):
            redis_client.lpush(QUEUE, raw)

        # When a legitimate batch follows
        csv = tmp_path / "in.csv"
        metadata_csv(csv, ids)
        batch = wait_done(producer, submit_csv(producer, csv, enqueue_chunk).id, timeout=60)
        workers.stop_all()
        log = (tmp_path / "worker0.log").read_text(encoding="utf-8")

        # Then it succeeded, with no traceback, and the garbage is gone from the queue
        assert {Outcome.SUCCEEDED: 2} == {k: v for k, v in batch.counts.items() if v}
        assert "Traceback" not in log
        assert 0 == redis_client.llen(QUEUE)


class TestForgedChunkForARealBatch:
    def test_staged_batch_is_not_run_by_a_forged_chunk(
        self,
        emulator: Any,
        workers: Workers,
        producer: Deps,
        redis_client: redis.Redis,
        tmp_path: Path,
    ) -> None:
        """A chunk naming a batch still being staged (not opened by its submit) runs nothing."""
        # Given a staged batch whose row would change a real session
        (session,) = emulator.seed(count=1)
        staged = producer.ledger.create_batch(name="staged", kind="csv", source="x.csv")
        producer.ledger.add_rows(
            staged.id,
            [NewRow(1, session, None, {"metadata": {"k": "v"}}, idempotency_key="ik-staged")],
        )
        workers.start(concurrency=2)

        # When a well-formed chunk naming it is pushed
        task_id, raw = call("vsbatch.process_chunk", staged.id, [1])
        redis_client.lpush(QUEUE, raw)
        log_path = tmp_path / "worker0.log"
        deadline = time.monotonic() + 30
        while not _lines_naming(log_path.read_text(encoding="utf-8"), task_id):
            assert time.monotonic() < deadline, "the forged chunk was never logged"
            time.sleep(0.2)
        workers.stop_all()

        # Then it was refused and the row is untouched
        log = log_path.read_text(encoding="utf-8")
        assert 0 == emulator.stats()["applied_total"]
        assert Outcome.QUEUED == producer.ledger.get_row(staged.id, 1).outcome
        assert ["not open"] == [
            "not open" for line in _lines_naming(log, task_id) if "not open" in line
        ]
