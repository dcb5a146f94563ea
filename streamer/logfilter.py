"""Rate-limited logs: a broker outage must not bury the operator in identical lines.

Kafka clients log one ERROR per retry (the worker logged ~100 lines/s while the broker was down). A
`RateLimitFilter` on a handler lets the first `burst` records of each (logger, level, message template)
through per `interval_s`, counts the rest, and once that interval is over writes one line per silenced
template: "<template> (repeated N more times in the last X s)". The summary goes out with the next record
that reaches the handler, so a silenced template is always accounted for once anything is logged again.
Records below `min_level` pass untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

Key = tuple[str, int, str]


@dataclass
class _Window:
    started: float
    passed: int = 0
    silenced: int = 0
    last: logging.LogRecord | None = None


class RateLimitFilter(logging.Filter):
    """Per-template rate limit for one handler (it writes its own summaries through that handler)."""

    def __init__(
        self,
        handler: logging.Handler,
        *,
        burst: int = 5,
        interval_s: float = 10.0,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if burst < 1 or interval_s <= 0:
            raise ValueError(f"burst must be >= 1 and interval_s > 0, not {burst} and {interval_s}")
        self.handler, self.burst, self.interval_s = handler, burst, interval_s
        self.min_level, self.clock = min_level, clock
        self._windows: dict[Key, _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "rate_limit_summary", False):
            return True
        now = self.clock()
        self._summarise_ended(now)
        if record.levelno < self.min_level:
            return True
        key = (record.name, record.levelno, str(record.msg))
        window = self._windows.setdefault(key, _Window(now))
        if window.passed < self.burst:
            window.passed += 1
            return True
        window.silenced += 1
        window.last = record
        return False

    def _summarise_ended(self, now: float) -> None:
        ended = [key for key, w in self._windows.items() if now - w.started >= self.interval_s]
        for key in ended:
            window = self._windows.pop(key)
            if window.silenced and window.last is not None:
                self.handler.handle(self._summary(window.last, window.silenced, now - window.started))

    @staticmethod
    def _summary(last: logging.LogRecord, silenced: int, span_s: float) -> logging.LogRecord:
        summary = logging.makeLogRecord(last.__dict__)
        summary.msg = f"{last.getMessage()} (repeated {silenced} more times in the last {span_s:.0f} s)"
        summary.args, summary.exc_info, summary.exc_text, summary.stack_info = (), None, None, None
        summary.rate_limit_summary = True
        return summary


def install(logger: logging.Logger | None = None, *, burst: int = 5, interval_s: float = 10.0) -> None:
    """Puts a `RateLimitFilter` on each handler of `logger` (default: the root logger) that has none yet."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RateLimitFilter) for f in handler.filters):
            handler.addFilter(RateLimitFilter(handler, burst=burst, interval_s=interval_s))
