"""Rate-limited logs: identical records past a burst are counted and summarised once per interval."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from mode.utils.logging import ExtensionFormatter

from streamer.logfilter import RateLimitFilter, install


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines(logging.Handler):
    """Keeps formatted lines; formats as the worker does (Faust's formatter rewrites `record.args`)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(ExtensionFormatter(fmt="%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, Lines, Clock]]:
    logger = logging.getLogger("test.logfilter.kafka")
    logger.propagate, logger.level = False, logging.DEBUG
    handler, clock = Lines(), Clock()
    handler.addFilter(RateLimitFilter(handler, burst=3, interval_s=10.0, clock=clock))
    logger.addHandler(handler)
    yield logger, handler, clock
    logger.removeHandler(handler)


def test_a_flood_is_cut_to_the_burst_then_one_summary_with_the_count(
    logged: tuple[logging.Logger, Lines, Clock],
) -> None:
    logger, handler, clock = logged
    for attempt in range(100):  # one error per retry, 100 per second, as aiokafka does with the broker down
        logger.error("Unable connect to node with id %s: attempt %d", 111, attempt)
        clock.now += 0.01
    first = "ERROR test.logfilter.kafka: Unable connect to node with id 111: attempt"
    assert handler.lines == [f"{first} {i}" for i in range(3)]
    clock.now += 9.2  # the interval is over: the next record of any kind brings the summary first
    logger.warning("broker reachable again")
    assert handler.lines[3:] == [
        f"{first} 99 (repeated 97 more times in the last 10 s)",
        "WARNING test.logfilter.kafka: broker reachable again",
    ]
    logger.error("Unable connect to node with id %s: attempt %d", 111, 100)
    assert handler.lines[-1].endswith("attempt 100"), "a new interval lets the template through again"


def test_templates_levels_and_low_levels_are_counted_apart(logged: tuple[logging.Logger, Lines, Clock]) -> None:
    logger, handler, clock = logged
    for _ in range(5):
        logger.error("fetch failed from %s", 1)
        logger.warning("fetch failed from %s", 1)
        logger.error("metadata update failed")
        logger.info("heartbeat")  # below WARNING: never limited
    assert sum("ERROR" in line and "fetch" in line for line in handler.lines) == 3
    assert sum("WARNING" in line for line in handler.lines) == 3
    assert sum("metadata" in line for line in handler.lines) == 3
    assert sum("heartbeat" in line for line in handler.lines) == 5
    clock.now += 10.0
    logger.info("tick")
    summaries = [line for line in handler.lines if "repeated" in line]
    assert len(summaries) == 3 and all("repeated 2 more times" in line for line in summaries)


def test_a_summary_of_a_message_holding_a_percent_sign_formats(logged: tuple[logging.Logger, Lines, Clock]) -> None:
    logger, handler, clock = logged
    for _ in range(4):
        logger.error("disk %s%% full", 99)
    clock.now += 10.0
    logger.error("disk %s%% full", 99)
    assert handler.lines[3:] == [
        "ERROR test.logfilter.kafka: disk 99% full (repeated 1 more times in the last 10 s)"
    ] + ["ERROR test.logfilter.kafka: disk 99% full"]


def test_a_quiet_template_is_never_summarised(logged: tuple[logging.Logger, Lines, Clock]) -> None:
    logger, handler, clock = logged
    logger.error("one-off failure")
    clock.now += 60.0
    logger.error("one-off failure")
    assert handler.lines == ["ERROR test.logfilter.kafka: one-off failure"] * 2


def test_install_puts_one_filter_on_each_handler_of_the_logger() -> None:
    logger = logging.getLogger("test.logfilter.install")
    handler = Lines()
    logger.addHandler(handler)
    try:
        install(logger, burst=2)
        install(logger, burst=2)  # idempotent: commands and the worker may both install it
        limiters = [f for f in handler.filters if isinstance(f, RateLimitFilter)]
        assert len(limiters) == 1 and limiters[0].burst == 2
    finally:
        logger.removeHandler(handler)
