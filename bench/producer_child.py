"""The producer scenario's measured process: ``python -m bench.producer_child CSV REDIS_URL``.

A fresh process, so that its RSS high-water mark (``ru_maxrss``) belongs to submitting alone:
it builds vsbatch's dependencies, records its RSS, submits the CSV with ``submit_csv`` (the
ledger rows plus one Celery message per chunk), and prints one JSON line of figures.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from bench.harness import API_KEY
from vsbatch.bootstrap import bootstrap
from vsbatch.config import Settings
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import Outcome
from vsbatch.worker.celery_app import configure, install_deps
from vsbatch.worker.tasks import enqueue_chunk


def _rss_kib() -> int:
    """The current resident set size, in KiB (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    """Submit the CSV named on the command line and print the figures."""
    csv_path, redis_url = Path(sys.argv[1]), sys.argv[2]
    settings = Settings(
        _env_file=None,
        redis_url=redis_url,
        stripe_api_key=API_KEY,
        stripe_api_base="http://127.0.0.1:9",
    )
    configure(settings)
    deps = bootstrap(settings)
    install_deps(deps)
    # Warm up Celery's producer (imports, connection pool) so that its one-off cost is not
    # counted as memory growing with the file.
    deps.redis.ping()
    rss_before = _rss_kib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    batch = submit_csv(deps, csv_path, enqueue_chunk)
    elapsed = time.perf_counter() - started
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info = deps.ledger.get_batch(batch.id)
    print(
        json.dumps(
            {
                "batch_id": batch.id,
                "rows": info.total,
                "queued": info.counts.get(Outcome.QUEUED, 0),
                "seconds": elapsed,
                "rss_before_kib": rss_before,
                "peak_before_kib": peak_before,
                "peak_after_kib": peak_after,
                "chunk_size": settings.chunk_size,
            }
        )
    )
    deps.close()


if __name__ == "__main__":
    main()
