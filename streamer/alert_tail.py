"""Reading the alerts topic for people and scripts: filters by bed, unit and priority, and a table layout.

Kafka reading is `streamer.kafka_io.tail` (no consumer group: a tail never takes partitions from another).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

from pydantic import BaseModel

from streamer.contract import Alert, Priority, decode_record
from streamer.kafka_io import tail
from streamer.settings import KafkaSettings

#: Clinical urgency order for "this priority and above"; technical alarms (equipment) rank lowest.
PRIORITY_RANK: dict[Priority, int] = {Priority.high: 3, Priority.medium: 2, Priority.low: 1, Priority.technical: 0}


def parse_priorities(text: str) -> frozenset[Priority]:
    """One name = that priority and above (``medium`` = high + medium); a comma list = exactly those."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in Priority.__members__]
    if unknown or not names:
        raise ValueError(f"unknown priority {', '.join(unknown) or text!r} (use {', '.join(Priority)})")
    if len(names) == 1:
        floor = PRIORITY_RANK[Priority(names[0])]
        return frozenset(p for p, rank in PRIORITY_RANK.items() if rank >= floor)
    return frozenset(Priority(name) for name in names)


class AlertFilter(BaseModel):
    """Empty sets match everything."""

    beds: frozenset[str] = frozenset()
    units: frozenset[str] = frozenset()
    priorities: frozenset[Priority] = frozenset()

    def matches(self, alert: Alert) -> bool:
        return (
            (not self.beds or alert.bed_id in self.beds)
            and (not self.units or alert.unit in self.units)
            and (not self.priorities or alert.priority in self.priorities)
        )


async def read_alerts(
    settings: KafkaSettings,
    topic: str,
    alert_filter: AlertFilter,
    *,
    from_beginning: bool = False,
    follow: bool = False,
    idle_timeout_s: float = 10.0,
) -> AsyncIterator[Alert | str]:
    """Matching alerts in topic order per partition; a record that is not a valid alert comes back as a
    one-line description instead (the tail reports it and goes on)."""
    async for record in tail(
        settings, topic, from_beginning=from_beginning, follow=follow, idle_timeout_s=idle_timeout_s
    ):
        try:
            alert = decode_record(record.value or b"", Alert)
        except ValueError as error:
            yield f"partition {record.partition} offset {record.offset}: {error}"
            continue
        assert isinstance(alert, Alert)
        if alert_filter.matches(alert):
            yield alert


COLUMNS = (("TIME", 8), ("BED", 28), ("UNIT", 6), ("PRIORITY", 9), ("STATE", 12), ("CONDITION", 24), ("HR", 4))


def table_header() -> str:
    return " ".join(name.ljust(width) for name, width in COLUMNS) + " MESSAGE"


def table_row(alert: Alert) -> str:
    """One aligned line; the time is the signal time of this state change, local clock."""
    when = dt.datetime.fromtimestamp(alert.event_time_ns / 1e9).strftime("%H:%M:%S")
    hr = alert.evidence.heart_rate_bpm
    priority = alert.priority.value.upper() if alert.priority is Priority.high else alert.priority.value
    cells = (
        when,
        alert.bed_id,
        alert.unit or "-",
        priority,
        alert.state.value,
        alert.condition,
        f"{hr:.0f}" if hr is not None else "-",
    )
    row = " ".join(str(cell)[:width].ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True))
    return f"{row} {alert.message}".rstrip()
