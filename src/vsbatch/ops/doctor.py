"""``vsbatch doctor``: what vsbatch will use, and whether it works, one line per check.

Checks, in order: the key (its kind and mode, never its value), the API base and the
Stripe-Version, the preflight request (``preflight``) and the local clock against its
``Date`` header, Redis (reachable, persistence, clock against ``TIME``), the worker
heartbeats (``liveness``), and the SQL results store (``vsbatch.results``). Each line is
``ok``, ``warn`` or ``fail``; a line that is not ok is followed by its fix. Exit code: 0 all
ok, 1 warnings only, 2 any failure.

The judgments (:func:`key_check`, :func:`skew_check`, :func:`persistence_check`,
:func:`exit_code`) are pure; :func:`run_doctor` does the requests. httpx and redis are
imported when the checks run, so registering the command costs ``vsbatch --help`` nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console

from vsbatch.errors import VsbatchError
from vsbatch.ops.terminal_text import safe
from vsbatch.urls import safe_url

if TYPE_CHECKING:
    import httpx
    import redis

    from vsbatch.config import Settings

__all__ = [
    "Check",
    "exit_code",
    "key_check",
    "persistence_check",
    "results_check",
    "run_doctor",
    "skew_check",
]

Level = Literal["ok", "warn", "fail"]
# Beyond this many seconds off, timestamps written from two hosts stop telling order.
SKEW_WARN = 5.0
_COLOR = {"ok": "green", "warn": "yellow", "fail": "red"}


@dataclass(frozen=True)
class Check:
    """One line of the doctor's answer: what was checked, how it went, and the fix."""

    name: str
    level: Level
    detail: str
    fix: str = ""


def key_check(key: str | None, problem: str | None) -> Check:
    """The key's kind and mode, e.g. ``sk_test_…(redacted), secret key, test mode`` (pure).

    Args:
        key: The configured key, or None.
        problem: Why the key may not be used with the configured base, or None.
    """
    if not key:
        return Check(
            "key", "fail", "no Stripe API key", "set VSBATCH_STRIPE_API_KEY (or STRIPE_API_KEY)"
        )
    prefix = key[: key.index("_", 3) + 1] if key.count("_") >= 2 else key[:3]
    kind = {"sk": "secret key", "rk": "restricted key"}.get(key[:2], "unknown kind")
    mode = "live mode" if "_live_" in prefix else "test mode"
    detail = f"{prefix}…(redacted), {kind}, {mode}"
    if problem:
        return Check("key", "fail", detail, problem)
    if mode == "live mode":
        return Check("key", "warn", detail, "live sessions: commands that write need --live")
    return Check("key", "ok", detail)


def skew_check(name: str, local: float, remote: float, resolution: float = 0.0) -> Check:
    """Compare the local clock with a remote one (pure).

    Args:
        name: The line's name.
        local: Local seconds since the epoch, at the middle of the round trip.
        remote: The remote clock, in seconds since the epoch.
        resolution: The remote clock's granularity (1 for an HTTP ``Date``), forgiven.
    """
    skew = local - remote
    shown = max(0.0, abs(skew) - resolution)
    where = "ahead of" if skew > 0 else "behind"
    if shown <= SKEW_WARN:
        return Check(name, "ok", f"within {SKEW_WARN:g}s ({skew:+.1f}s)")
    return Check(
        name,
        "warn",
        f"the local clock is {abs(skew):.0f}s {where} it",
        "sync the clock (NTP: timedatectl set-ntp true); ledger times and migration windows use it",
    )


def persistence_check(config: Mapping[str, str] | None, info: Mapping[str, Any] | None) -> Check:
    """Whether Redis keeps the ledger across a restart, from CONFIG GET and INFO (pure).

    Args:
        config: ``CONFIG GET appendonly`` and ``appendfsync``, or None when CONFIG is refused.
        info: ``INFO persistence``, or None when refused.
    """
    fix = "turn on the append-only file (appendonly yes, appendfsync everysec)"
    if config and "appendonly" in config:
        aof: bool | None = config["appendonly"] == "yes"
    elif info and "aof_enabled" in info:
        aof = str(info["aof_enabled"]) == "1"
    else:
        aof = None
    if aof is None:
        return Check(
            "persistence",
            "warn",
            "unknown (CONFIG and INFO refused)",
            "ask your provider whether AOF is on: without it a restart loses ledger writes",
        )
    if aof:
        fsync = (config or {}).get("appendfsync")
        return Check("persistence", "ok", f"AOF on{f' (appendfsync {fsync})' if fsync else ''}")
    return Check(
        "persistence", "warn", "AOF off: a restart loses the writes since the last save", fix
    )


def exit_code(checks: list[Check]) -> int:
    """2 if any check failed, 1 if any warned, else 0 (pure)."""
    levels = {c.level for c in checks}
    return 2 if "fail" in levels else 1 if "warn" in levels else 0


def stripe_checks(
    settings: Settings,
    key: str,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    *,
    budget: float | None = None,
) -> list[Check]:
    """The preflight check (under the preflight's total deadline) and the clock check."""
    from vsbatch.stripe import preflight

    url = settings.stripe_api_base + preflight.PREFLIGHT_PATH
    seconds = preflight.BUDGET if budget is None else budget
    before = clock()
    response, verdict = preflight.probe(settings, key, seconds=seconds, transport=transport)
    local = (before + clock()) / 2
    if not verdict.ok:
        fix = "check VSBATCH_STRIPE_API_BASE, the network and the key"
        return [Check("preflight", "fail", f"GET {safe_url(url)}: {verdict.cause}", fix)]
    checks = [Check("preflight", "ok", f"GET {safe_url(url)}: the key may read sessions")]
    date = response.headers.get("Date") if response is not None else None
    if date:
        try:
            remote = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return checks
        checks.append(skew_check("clock vs api", local, remote + 0.5, resolution=0.5))
    return checks


def _redis_checks(
    client: redis.Redis, where: str, clock: Callable[[], float], prefix: str = "vsbatch"
) -> list[Check]:
    import redis as redis_py

    from vsbatch.store.keys import Keys
    from vsbatch.store.liveness import live_nodes

    before = clock()
    seconds, micros = client.time()
    local = (before + clock()) / 2
    version = client.info("server").get("redis_version", "?")
    checks = [Check("redis", "ok", f"{where} answers (version {version})")]
    try:
        raw = client.config_get("append*")
        config: dict[str, str] | None = {as_text(k): as_text(v) for k, v in raw.items()}
    except redis_py.ResponseError:
        config = None
    try:
        info: dict[str, Any] | None = client.info("persistence")
    except redis_py.ResponseError:
        info = None
    checks.append(persistence_check(config, info))
    checks.append(skew_check("clock vs redis", local, seconds + micros / 1e6))
    nodes = live_nodes(client, Keys(prefix))
    if nodes:
        shown = ", ".join(nodes[:3]) + (", …" if len(nodes) > 3 else "")
        checks.append(Check("workers", "ok", f"{len(nodes)} alive ({shown})"))
    else:
        fix = "'vsbatch worker' starts one (submit needs one; run and resume work in-process)"
        checks.append(Check("workers", "warn", "no live worker", fix))
    return checks


def as_text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _redis_part(settings: Settings, clock: Callable[[], float]) -> list[Check]:
    import redis as redis_py

    from vsbatch.bootstrap import connect
    from vsbatch.worker.runtime import redis_for

    if settings.redis_url:
        where = safe_url(settings.redis_url)
    else:
        where = f"the embedded server ({settings.data_dir / 'redis'})"
    try:
        with redis_for(settings) as resolved:
            client = connect(resolved)
            try:
                return _redis_checks(client, where, clock, settings.key_prefix)
            finally:
                client.close()
    except (VsbatchError, redis_py.RedisError) as exc:
        fix = "check VSBATCH_REDIS_URL (unset: vsbatch starts its own under VSBATCH_DATA_DIR)"
        return [Check("redis", "fail", safe_url(str(exc)), fix)]


def run_doctor(
    settings: Settings,
    console: Console,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Run every check, print one line each (and a fix under each one not ok); the exit code."""
    key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None
    problem = None
    if key:
        try:
            settings.require_api_key()
        except VsbatchError as exc:
            problem = str(exc)
    checks = [
        key_check(key, problem),
        Check("api base", "ok", safe_url(settings.stripe_api_base)),
        Check("stripe-version", "ok", settings.stripe_version),
    ]
    for check in checks:
        _print(console, check)
    if key and problem is None:
        for check in stripe_checks(settings, key, transport, clock):
            checks.append(check)
            _print(console, check)
    for check in [*_redis_part(settings, clock), results_check(settings)]:
        checks.append(check)
        _print(console, check)
    return exit_code(checks)


def results_check(settings: Settings) -> Check:
    """The results store: reachable and migrated, and how much it holds."""
    from vsbatch.results.engine import shown_url
    from vsbatch.results.store import ResultsStore

    where = shown_url(settings.results_database_url)
    try:
        with ResultsStore.open(settings.results_database_url) as store:
            batches = store.count_batches()
    except VsbatchError as exc:
        fix = "check VSBATCH_RESULTS_URL (unset: SQLite in VSBATCH_DATA_DIR)"
        return Check("results", "fail", str(exc), fix)
    duty = "workers archive ended batches" if settings.archive else "VSBATCH_ARCHIVE is off"
    return Check("results", "ok", f"{where}: {batches} batch(es) archived; {duty}")


def _print(console: Console, check: Check) -> None:
    color = _COLOR[check.level]
    console.print(
        f"[{color}]{check.level:4}[/{color}]  {check.name:15} {safe(check.detail)}",
        highlight=False,
        soft_wrap=True,
    )
    if check.level != "ok" and check.fix:
        console.print(f"      {'':15} fix: {safe(check.fix)}", highlight=False, soft_wrap=True)
