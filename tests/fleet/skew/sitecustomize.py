"""Put this process's wall clock ``VSBATCH_FLEET_CLOCK_OFFSET`` seconds ahead (fleet test (e)).

On ``PYTHONPATH`` of one worker only. Python's wall clock readers are shifted: ``time.time``,
``time.time_ns`` and ``datetime.datetime.now``/``utcnow``/``today`` (for modules that import
``datetime`` after this runs, which is all of them: ``site`` imports this first). The monotonic
clock, sleeps and timed waits are left alone, as a host whose clock is off would have them.
libfaketime cannot do this for Python: with its monotonic clock left alone, ``time.sleep``
fails with EINVAL; with it shifted, ``threading.Event.wait(1.0)`` never returns.
"""

from __future__ import annotations

import datetime as _datetime
import os
import time as _time
from typing import Any

_OFFSET = float(os.environ.get("VSBATCH_FLEET_CLOCK_OFFSET", "0") or 0)

if _OFFSET:
    _real_time, _real_time_ns = _time.time, _time.time_ns
    _DELTA = _datetime.timedelta(seconds=_OFFSET)

    def _time_ahead() -> float:
        return _real_time() + _OFFSET

    def _time_ns_ahead() -> int:
        return _real_time_ns() + int(_OFFSET * 1e9)

    class _DatetimeAhead(_datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return super().now(tz) + _DELTA

        @classmethod
        def utcnow(cls) -> Any:
            return super().utcnow() + _DELTA

        @classmethod
        def today(cls) -> Any:
            return super().today() + _DELTA

    _time.time = _time_ahead
    _time.time_ns = _time_ns_ahead
    _datetime.datetime = _DatetimeAhead  # type: ignore[misc]
