"""The key layout on Redis Cluster: with ``VSBATCH_KEY_PREFIX={vsbatch}`` every key one
script touches, declared in KEYS or built inside Lua from an ARGV prefix, hashes to one slot.

A batch's whole life runs on a cluster-enabled node (it refuses a cross-slot MULTI or
multi-key command outright, ``CROSSSLOT``) while ``MONITOR`` records every command, the
script's own included; each script call's keys are then hashed with CRC16 as Redis Cluster
does (redis-py's ``key_slot``, hash tags honoured). The broker is the session's plain Redis:
kombu's transport has no Cluster support.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from tests.e2e.conftest import wait_done, worker_env
from tests.e2e.topology import Topology, on_topology
from tests.helpers import closed_port
from tests.redis_servers import Server, servers, valkey_binary
from tests.reliability.harness import write_csv
from vsbatch.errors import CsvFileError
from vsbatch.intake.stage import SubmitOptions, submit_csv
from vsbatch.store.liveness import HeldChunk, Liveness
from vsbatch.store.scripts import lua_script
from vsbatch.worker.row_options import RowOptions
from vsbatch.worker.tasks import enqueue_chunk

pytestmark = pytest.mark.slow

# kombu's record of unacknowledged messages: the broker's script, not the ledger's.
BROKER_SCRIPTS = {"unacked.lua"}


def script_names() -> dict[str, str]:
    """SHA1 -> file name of every script the ledger runs (includes are not run alone)."""
    files = resources.files("vsbatch.store.scripts")
    names = [p.name for p in files.iterdir() if p.name.endswith(".lua")]
    runnable = [n for n in names if not n.endswith("_core.lua") and n not in BROKER_SCRIPTS]
    return {hashlib.sha1(lua_script(n).encode()).hexdigest(): n for n in runnable}


_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})|\\(.)")
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b"}


def _unquote(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1):
            return chr(int(match.group(1), 16))
        return _SIMPLE.get(match.group(2), match.group(2))

    return _ESCAPE.sub(one, text)


@dataclass
class Call:
    """One script call as MONITOR showed it: its declared keys, then its own commands."""

    sha: str
    declared: list[str]
    commands: list[list[str]] = field(default_factory=list)


class Monitor:
    """Every command a server runs, from a raw ``MONITOR`` connection, in a thread."""

    def __init__(self, port: int) -> None:
        self.lines: list[str] = []
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._sock.sendall(b"MONITOR\r\n")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            buffer += data
            *complete, buffer = buffer.split(b"\r\n")
            self.lines.extend(line.decode("latin-1") for line in complete)

    def stop(self) -> list[str]:
        self._sock.close()
        self._thread.join(timeout=5)
        return self.lines

    def script_calls(self) -> list[Call]:
        """Each EVALSHA/EVAL with the commands its script ran (MONITOR shows a script's
        commands, marked ``[0 lua]``, right after the call, and never interleaved)."""
        calls: list[Call] = []
        current: Call | None = None
        for line in self.lines:
            args = [_unquote(a) for a in _ARG.findall(line)]
            if not args:
                continue
            if "[0 lua]" in line and current is not None:
                current.commands.append(args)
                continue
            current = None
            if args[0].lower() in ("evalsha", "eval"):
                sha = args[1] if args[0].lower() == "evalsha" else ""
                current = Call(sha, args[3 : 3 + int(args[2])])
                calls.append(current)
        return calls


def command_keys(
    client: redis.Redis, args: list[str], cache: dict[tuple[str, ...], list[str]]
) -> list[str]:
    """The key arguments of one command, as the server itself finds them."""
    if tuple(args) not in cache:
        try:
            found = client.command_getkeys(*args)
        except redis.ResponseError:  # a command with no key (TIME)
            found = []
        cache[tuple(args)] = [k.decode() if isinstance(k, bytes) else str(k) for k in found]
    return cache[tuple(args)]


@pytest.fixture
def cluster_node(tmp_path: Path) -> Iterator[Server]:
    """A cluster-enabled node that serves every slot (a one-node Redis Cluster)."""
    conf = ["cluster-enabled yes", "cluster-config-file nodes.conf", 'save ""', "appendonly no"]
    conf.append(f"cluster-port {closed_port()}")  # else port + 10000, which may not exist
    with servers() as started:
        node = Server(valkey_binary(), tmp_path / "cluster", closed_port(), conf)
        started.append(node.start())
        client = node.client(decode_responses=True)
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        deadline = time.monotonic() + 20
        while "cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the one-node cluster did not come up"
            time.sleep(0.05)
        client.close()
        yield node


@pytest.fixture
def topo(
    cluster_node: Server, emulator: Any, tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> Iterator[Topology]:
    """Ledger on the cluster node under a hash-tagged prefix; broker on the session's Redis."""
    env = {
        **worker_env(f"redis://127.0.0.1:{cluster_node.port}/0", emulator.url),
        "VSBATCH_BROKER_URL": redis_url,
        "VSBATCH_KEY_PREFIX": "{vsbatch}",
        "VSBATCH_HEARTBEAT_SECONDS": "0.5",
    }
    with on_topology(env, emulator, tmp_path, redis_url) as found:
        yield found


def live_a_batchs_life(topo: Topology, tmp_path: Path) -> None:
    """Every path a row takes: staged, opened, claimed, rate-limited (429s), retried (503s),
    read first, ordered behind an older update of its session, finished, canceled, refused
    and discarded; a dead worker's chunks reaped; locks taken and let go."""
    deps, emulator = topo.deps, topo.emulator
    emulator.configure(seed=5, rate_limit=8, latency_ms=20, fail_503_rate=0.2)
    ids = list(emulator.seed(count=12))
    first = write_csv(tmp_path / "a.csv", ["id", "metadata.k"], [[i, "a"] for i in ids])
    second = write_csv(tmp_path / "b.csv", ["id", "metadata.k"], [[i, "b"] for i in ids[:6]])
    canceled = write_csv(tmp_path / "c.csv", ["id", "metadata.k"], [[i, "c"] for i in ids[6:]])
    refused = write_csv(tmp_path / "d.csv", ["id", "metadata.k"], [[ids[0], "d"], ["bad", "d"]])
    # Submitted before any worker runs: b.csv's rows wait behind a.csv's (per-session FIFO).
    a = submit_csv(deps, first, enqueue_chunk)
    b = submit_csv(deps, second, enqueue_chunk, SubmitOptions(row_options=RowOptions(True)))
    c = submit_csv(deps, canceled, enqueue_chunk)
    deps.ledger.cancel(c.id)
    with pytest.raises(CsvFileError, match="--strict"):
        submit_csv(deps, refused, enqueue_chunk, SubmitOptions(strict=True))
    topo.workers.start(concurrency=4)
    for batch in (a, b, c):
        wait_done(deps, batch.id, timeout=120)
    # What only some runs do: an older update of a session asked about, a lock taken and let
    # go, a dead worker's held chunk taken over, the limiter's rate read.
    record = deps.ledger.get_row(b.id, 2)
    deps.ledger.older_pending(record)
    token = deps.locks.acquire(None, ids[0])
    assert token is not None
    deps.locks.release(None, ids[0], token)
    Liveness(deps.redis, deps.ledger.keys, "dead:1:x").hold("m1", HeldChunk(a.id, [2], {}))
    Liveness(deps.redis, deps.ledger.keys, "alive:1:y").reap()
    deps.limiter.current_rate(None)
    list(deps.ledger.iter_rows(a.id))


class TestClusterLayout:
    def test_every_script_call_touches_one_slot(
        self, cluster_node: Server, topo: Topology, tmp_path: Path
    ) -> None:
        """Under ``{vsbatch}``, each script call's keys (declared and built in Lua) share one
        slot, and the life of a batch runs on a cluster node without a CROSSSLOT refusal."""
        # Given every command of the ledger's Redis recorded
        monitor = Monitor(cluster_node.port)

        # When batches live their whole life on it
        try:
            live_a_batchs_life(topo, tmp_path)
        finally:
            monitor.stop()

        # Then every script ran, and each call's keys hash to one slot
        names = script_names()
        calls = monitor.script_calls()
        client = cluster_node.client()
        cache: dict[tuple[str, ...], list[str]] = {}
        spread: dict[str, set[str]] = {}
        for call in calls:
            keys = set(call.declared)
            for command in call.commands:
                keys.update(command_keys(client, command, cache))
            if len({key_slot(k.encode()) for k in keys}) > 1:
                spread.setdefault(names.get(call.sha, call.sha), set()).update(keys)
        client.close()
        assert set(names.values()) == {names.get(c.sha, "?") for c in calls} - {"?"}
        assert {} == spread
        assert any("{vsbatch}:pending:" in " ".join(c) for call in calls for c in call.commands)
