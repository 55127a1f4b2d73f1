"""Unit tests of the emulator's plain-Python state: limiter, keys, paging, faults, exports."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

import vsbatch.emulator
from vsbatch.emulator import EmulatorConfig
from vsbatch.emulator.faults import FaultKind, FaultPlan
from vsbatch.emulator.sessions import SessionStore
from vsbatch.emulator.state import Emulator, IdempotencyStore, RateLimiter


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestExports:
    """The package's public API is what ``__all__`` says."""

    def test_all_matches_the_public_names(self) -> None:
        """Every name in ``__all__`` exists and no public name is missing from it."""
        public = {name for name in dir(vsbatch.emulator) if not name.startswith("_")}
        modules = {"app", "config", "faults", "forms", "operations", "server", "state", "wire"}
        modules |= {"sessions", "cli", "fault_spec", "launch", "admin", "versions", "views"}
        modules.add("annotations")

        actual = sorted(vsbatch.emulator.__all__)

        assert sorted(public - modules) == actual


class TestRateLimiter:
    """A sliding one-second window per account."""

    def test_refuses_past_the_limit_within_the_window(self) -> None:
        """The 4th request in the same instant is refused at a limit of 3."""
        limiter = RateLimiter(3, clock=FakeClock())

        actual = [limiter.allow("acct") for _ in range(4)]

        assert [True, True, True, False] == actual

    def test_admits_again_once_the_window_slides(self) -> None:
        """A second later the account has its full allowance back."""
        clock = FakeClock()
        limiter = RateLimiter(2, clock=clock)
        limiter.allow("acct")
        limiter.allow("acct")

        clock.now += 1.0

        assert limiter.allow("acct")

    def test_accounts_are_limited_separately(self) -> None:
        """One account's burst does not limit another."""
        limiter = RateLimiter(1, clock=FakeClock())
        limiter.allow("a")

        assert (False, True) == (limiter.allow("a"), limiter.allow("b"))

    def test_zero_turns_the_limiter_off(self) -> None:
        """A limit of 0 admits everything."""
        limiter = RateLimiter(0, clock=FakeClock())

        assert all(limiter.allow("acct") for _ in range(1000))


class TestIdempotencyStore:
    """Keys live ``ttl`` seconds; an unfinished claim can be released."""

    def test_key_is_pruned_after_the_ttl(self) -> None:
        """Past the TTL the same key starts a new request."""
        clock = FakeClock()
        store = IdempotencyStore(ttl=86_400, clock=clock)
        store.claim("acct", "k", ("p",)).done = True

        clock.now += 86_401

        assert None is store.get("acct", "k")

    def test_release_forgets_an_unfinished_claim(self) -> None:
        """Nothing is stored for a request refused mid-way."""
        store = IdempotencyStore(ttl=60, clock=FakeClock())
        entry = store.claim("acct", "k", ("p",))

        store.release("acct", "k", entry)

        assert None is store.get("acct", "k")


class TestSessionStore:
    """Ids and newest-first paging."""

    def test_ids_are_vs_and_24_base62_characters(self) -> None:
        """A generated id looks like Stripe's."""
        store = SessionStore(random.Random(0))

        actual = store.create("").id

        assert (27, "vs_", True) == (len(actual), actual[:3], actual[3:].isalnum())

    def test_pages_newest_first_with_cursors(self) -> None:
        """``starting_after`` continues downwards and ``ending_before`` goes back up."""
        store = SessionStore(random.Random(0))
        ids = [store.create("").id for _ in range(5)]

        first, more = store.page("", limit=2)
        second, _ = store.page("", limit=2, starting_after=first[-1].id)
        back, _ = store.page("", limit=2, ending_before=second[0].id)

        actual = ([s.id for s in first], more, [s.id for s in second], [s.id for s in back])
        assert ([ids[4], ids[3]], True, [ids[2], ids[1]], [ids[4], ids[3]]) == actual

    def test_redaction_completes_when_due_on_the_stores_clock(self) -> None:
        """A redaction reads processing until its delay has passed, then redacted with
        placeholders."""
        clock = FakeClock()
        store = SessionStore(random.Random(0), wall_clock=clock)
        session = store.create("", provided_details={"email": "a@b.co"}, metadata={"k": "v"})
        store.redact(session, 60)
        clock.now += 59
        early = dict(store.get("", session.id).obj)  # type: ignore[union-attr]

        clock.now += 1
        late = store.get("", session.id).obj  # type: ignore[union-attr]

        actual = [(s["redaction"], s["metadata"], s["provided_details"]) for s in (early, late)]
        assert [
            ({"status": "processing"}, {}, {"email": "a@b.co"}),
            ({"status": "redacted"}, {}, {"email": "[redacted]"}),
        ] == actual


class TestFaultPlan:
    """Fault draws are a pure function of seed, account, path and request number."""

    def _outcomes(self, seed: int) -> list[FaultKind]:
        config = EmulatorConfig(seed=seed, fail_503_rate=0.3, drop_rate=0.2, hang_rate=0.1)
        plan = FaultPlan(config)
        return [plan.draw("", "POST", f"/v1/x/{i % 7}").kind for i in range(200)]

    def test_same_seed_same_sequence(self) -> None:
        """Two plans with one seed draw the same faults."""
        assert self._outcomes(7) == self._outcomes(7)

    def test_other_seed_other_sequence(self) -> None:
        """Another seed draws other faults."""
        assert self._outcomes(7) != self._outcomes(8)

    def test_shares_are_roughly_respected(self) -> None:
        """About 30 % of draws are 503s at a 0.3 share."""
        actual = self._outcomes(1).count(FaultKind.FAIL_503) / 200

        assert 0.2 < actual < 0.4


class TestEmulatorConfig:
    """Config changes are validated."""

    def test_unknown_field_is_refused(self) -> None:
        """A typo in a field name is an error, not silently ignored."""
        with pytest.raises(ValidationError):
            Emulator().configure(fail_503=0.5)

    def test_share_out_of_range_is_refused(self) -> None:
        """Shares are in 0..1."""
        with pytest.raises(ValidationError):
            EmulatorConfig(drop_rate=1.5)

    def test_applies_takes_a_bool_or_a_share(self) -> None:
        """``hang_applies`` keeps true/false and accepts a share."""
        actual = (
            EmulatorConfig(hang_applies=False).hang_applies,
            EmulatorConfig(hang_applies=0.5).hang_applies,
        )

        assert (False, 0.5) == actual

    def test_reset_restores_the_startup_config_and_sessions(self) -> None:
        """A reset brings back the start-up config and the same seeded session ids."""
        emulator = Emulator(EmulatorConfig(rate_limit=5), sessions=2)
        before = [s for s in emulator.world.sessions._by_id]
        emulator.configure(rate_limit=0)

        emulator.reset()

        actual = (emulator.config.rate_limit, list(emulator.world.sessions._by_id))
        assert (5, before) == actual
