"""``vsbatch beat``'s scheduler: Celery's in-memory one, waking at least every
:data:`MAX_TICK` seconds, touching the health file (``VSBATCH_HEALTH_FILE``, given to the app
as ``conf.vsbatch_health_file``) on each tick.

In memory: two beats started by mistake share nothing to corrupt; each tick is claimed in
Redis by the worker that runs it (``migrations.run``). The short tick is what makes the health
file mean something: Celery's default sleeps up to 300 s when nothing is due.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery.beat import Scheduler

from vsbatch.ops.health import touch

__all__ = ["MAX_TICK", "SCHEDULER", "HealthScheduler"]

MAX_TICK = 5  # seconds: the longest beat sleeps between two looks at the schedule
SCHEDULER = f"{__name__}:HealthScheduler"


class HealthScheduler(Scheduler):
    """Celery's scheduler, touching the app's ``vsbatch_health_file`` after each tick."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = float(super().tick(*args, **kwargs))
        health = self.app.conf.get("vsbatch_health_file")
        if health:
            touch(Path(health))
        return interval
