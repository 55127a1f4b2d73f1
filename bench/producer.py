"""The producer scenario: submitting a large CSV with no workers (a fresh subprocess, see
:mod:`bench.producer_child`): time, peak memory, Redis memory and broker messages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import redis

from bench.harness import ROOT, Stack, clean_env, write_csv
from bench.report import Ratio, ScenarioResult, table

if TYPE_CHECKING:
    from bench.sizes import Sizes


def producer(sizes: Sizes) -> ScenarioResult:
    """Submit a large CSV (no workers): time, peak memory, Redis memory, broker messages."""
    rows = sizes.producer_rows
    result = ScenarioResult("producer")
    with Stack("producer") as stack:
        path = stack.dir / "producer.csv"
        started = time.perf_counter()
        write_csv(path, ((f"vs_bench{i:014d}", None) for i in range(rows)))
        generated = time.perf_counter() - started
        server = stack.redis()
        client = redis.Redis.from_url(server.url)
        stack.callback(client.close)
        used_before = int(client.info("memory")["used_memory"])
        child = subprocess.run(
            [sys.executable, "-m", "bench.producer_child", str(path), server.url],
            cwd=ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            raise RuntimeError(f"producer child failed:\n{child.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
        used_after = int(client.info("memory")["used_memory"])
        messages = int(client.llen("vsbatch"))
        size_mb = path.stat().st_size / 1e6
    seconds = float(figures["seconds"])
    growth_mib = (figures["peak_after_kib"] - figures["rss_before_kib"]) / 1024
    per_row = (used_after - used_before) / rows
    result.tables.append(
        table(
            f"producer: {rows:,}-row CSV ({size_mb:.0f} MB) submitted with submit_csv to an "
            "embedded Redis, no workers (fresh subprocess)",
            [
                "rows",
                "seconds",
                "rows/s",
                "RSS before MiB",
                "peak RSS MiB",
                "peak - before MiB",
                "Redis B/row",
                "messages",
                "rows/message",
            ],
            [
                [
                    rows,
                    seconds,
                    rows / seconds,
                    figures["rss_before_kib"] / 1024,
                    figures["peak_after_kib"] / 1024,
                    growth_mib,
                    per_row,
                    messages,
                    rows / messages if messages else None,
                ]
            ],
        )
    )
    result.notes.append(
        f"CSV generated in {generated:.1f} s (not counted); Redis used_memory "
        f"{used_before / 2**20:.1f} -> {used_after / 2**20:.1f} MiB; broker messages = LLEN of "
        f"the 'vsbatch' queue; chunk size {figures['chunk_size']} (the default); "
        f"rows queued {figures['queued']:,}"
    )
    result.ratios += [
        Ratio("producer", "rows/s submitted", rows / seconds, ""),
        Ratio("producer", "producer peak RSS growth MiB", growth_mib, "flat = streamed"),
        Ratio("producer", "Redis bytes per queued row", per_row, ""),
        Ratio("producer", "broker messages / rows", messages / rows, ""),
    ]
    result.data = {
        "rows": rows,
        "csv_mb": size_mb,
        "seconds": seconds,
        "redis_used_before": used_before,
        "redis_used_after": used_after,
        "messages": messages,
        **figures,
    }
    return result
