"""The fault matrix: one batch per fault, through real worker processes, one set of invariants.

Each case runs 150 rows against its own append-only Redis (so that Redis itself can be
stopped or killed), the session's emulator over its socket and ``vsbatch worker``
subprocesses, injects one fault, waits until the batch is done, and asserts with
:func:`assert_invariants`: every row terminal exactly once, no session updated twice for one
row, counts that add up, and each session's final state the one its row's outcome says.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import settings_from, wait_done, worker_env
from tests.reliability.fault_cases import (
    CASES,
    CONCURRENCY,
    LATENCY_MS,
    ROWS,
    Case,
    _await,
    _final_metadata,
    limiter_backed_off,
    stop_first,
)
from tests.reliability.harness import Rig, batch_violations, open_rig, write_csv
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import BatchInfo, Outcome
from vsbatch.worker.celery_app import configure
from vsbatch.worker.tasks import enqueue_chunk


def assert_invariants(
    rig: Rig, batch: BatchInfo, *, may_fail_retryable: bool = False, late_applies: bool = False
) -> None:
    """The matrix's one assertion: exactly-once outcomes, no double application, counts add up.

    Every session is ``requires_input``, so every row must succeed; a case that may
    legitimately run a row out of retries allows ``failed`` rows, which must be retryable and
    whose session must not have been updated, unless the case applies updates late behind
    ambiguous answers (``late_applies``): then such a session was updated at most once.
    """
    rows = list(rig.deps.ledger.iter_rows(batch.id))
    applied: dict[str, int] = rig.emulator.stats()["applied"]
    # One record per input row, each in a terminal outcome, the batch done, counts add up.
    assert [] == batch_violations(batch, rows, rig.ids)
    # No session updated twice; a session was updated if and only if its row succeeded.
    assert {} == {sid: n for sid, n in applied.items() if n != 1}
    succeeded = {r.session_id for r in rows if r.outcome is Outcome.SUCCEEDED}
    failed = {r.session_id for r in rows if r.outcome is Outcome.FAILED}
    assert succeeded == set(applied) - (failed if late_applies else set())
    allowed = {(Outcome.FAILED, True)} if may_fail_retryable else set()
    unexpected = [
        (r.row, r.outcome, r.retryable, r.error_code)
        for r in rows
        if r.outcome is not Outcome.SUCCEEDED and (r.outcome, r.retryable) not in allowed
    ]
    assert [] == unexpected
    # The final state is the last applied update: the row's change iff the row succeeded.
    final = _final_metadata(rig)
    assert [] == [r.row for r in rows if (r.outcome is Outcome.SUCCEEDED) != (final[r.session_id])]


@pytest.fixture
def rig(
    tmp_path: Path, emulator: Any, redis_url: str, request: pytest.FixtureRequest
) -> Iterator[Rig]:
    """A private append-only Redis, worker settings for the case, and the producer on them."""
    case: Case = CASES[request.param]
    try:
        with open_rig(tmp_path, emulator, case.worker_env) as rig:
            yield rig
    finally:
        # Put the Celery app back on the session's test Redis for the tests that follow.
        configure(settings_from(worker_env(redis_url, emulator.url)))


def _csv(tmp_path: Path, ids: list[str], value: str = "matrix") -> Path:
    rows = [[i, value] for i in ids]
    return write_csv(tmp_path / f"{value}.csv", ["id", "metadata.batch"], rows)


def run_case(rig: Rig, case: Case) -> BatchInfo:
    """Run the case's batch to the end, disrupting it once at the case's moment."""
    rig.emulator.configure(
        **{"seed": 11, "rate_limit": 0, "latency_ms": LATENCY_MS, **case.emulator}
    )
    rig.ids = list(rig.emulator.seed(count=ROWS))
    rig.first = rig.workers.start(concurrency=CONCURRENCY)
    batch = submit_csv(rig.deps, _csv(rig.workers.log_dir, rig.ids), enqueue_chunk)
    rig.batch_id = batch.id

    def disrupt(info: BatchInfo) -> None:
        if not rig.started and info.terminal:
            rig.started = time.monotonic()  # the worker is up and rows are moving
        if case.disruption and not rig.notes.get("disrupted") and case.disruption.due(rig, info):
            rig.notes["disrupted"] = True
            case.disruption.action(rig)

    return wait_done(rig.deps, batch.id, timeout=60, poll=disrupt)


class TestFaultMatrix:
    @pytest.mark.parametrize("rig", sorted(CASES), indirect=True)
    def test_every_row_ends_exactly_once(self, rig: Rig, request: pytest.FixtureRequest) -> None:
        """Under each fault, every row ends terminal once and no session is updated twice."""
        # Given sessions requiring input and the case's fault
        case = CASES[request.node.callspec.params["rig"]]

        # When a batch of one update per session runs through the workers
        done = run_case(rig, case)

        # Then the fault happened and the invariants hold
        if case.evidence is not None:
            case.evidence(rig)
        assert_invariants(
            rig, done, may_fail_retryable=case.may_fail_retryable, late_applies=case.late_applies
        )

    @pytest.mark.parametrize("rig", ["worker_sigstop"], indirect=True)
    def test_paused_worker_never_overwrites_a_newer_update(self, rig: Rig) -> None:
        """A worker SIGSTOPped about to send old updates, whose batch is canceled while the
        fleet applies newer updates of the same sessions, sends none of them after SIGCONT."""
        # Given a worker slowed by the rate limiter (its threads wait there, about to send)
        sessions, slow = 20, {"VSBATCH_RATE_LIMIT": "5"}
        rig.emulator.configure(seed=11, rate_limit=0, latency_ms=0)
        rig.ids = list(rig.emulator.seed(count=sessions))
        rig.first = rig.workers.start(concurrency=CONCURRENCY, **slow)
        old = submit_csv(rig.deps, _csv(rig.workers.log_dir, rig.ids, "old"), enqueue_chunk)
        rig.batch_id = old.id
        _await(lambda: 4 <= rig.deps.ledger.get_batch(old.id).terminal, "rows to move")
        stop_first(rig)

        # When it is stopped, its batch canceled, a newer batch applied by a fresh worker
        rig.deps.ledger.cancel(old.id)
        new = submit_csv(rig.deps, _csv(rig.workers.log_dir, rig.ids, "new"), enqueue_chunk)
        rig.workers.start(concurrency=CONCURRENCY, **slow)
        wait_done(rig.deps, new.id, timeout=60)
        wait_done(rig.deps, old.id, timeout=60)
        # ... and it goes on, then shuts down once its tasks are done
        rig.first.send_signal(signal.SIGCONT)
        rig.first.send_signal(signal.SIGTERM)
        rig.first.wait(timeout=60)

        # Then every session holds the newer update
        final = _final_metadata(rig, "new")
        assert [] == [sid for sid in rig.ids if not final[sid]]
        assert rig.notes["in_flight"]

    @pytest.mark.parametrize("rig", ["429_storm"], indirect=True)
    def test_limiter_backs_off_below_a_misconfigured_rate(self, rig: Rig) -> None:
        """Configured at 5x Stripe's real limit, the fleet's 429s stay a start-up transient."""
        run_case(rig, CASES["429_storm"])

        limiter_backed_off(rig)
