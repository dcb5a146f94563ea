"""The central station's look back: HR and rhythm trends, the alarm review and the audit trail. Pure, no Kafka.

The feed reads the vitals, alerts, actions and audit topics from their beginning into these stores and keeps
them up to date; records older than the horizon are not kept. Trends are downsampled here, on the server: the
page gets at most a few hundred points per bed whatever the span.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from streamer.contract import Alert, AlertAction, AlertState, AuditRecord, Vitals
from streamer.dashboard.board import shown_rhythm

MS = 1_000_000  # ns per ms


@dataclass
class _Bucket:
    n: int = 0
    hr_n: int = 0
    hr_sum: float = 0.0
    hr_min: float = math.inf
    hr_max: float = -math.inf
    rhythms: Counter[str] = field(default_factory=Counter)

    def add(self, hr: float | None, rhythm: str | None, n: int = 1) -> None:
        self.n += n
        if hr is not None:
            self.hr_n, self.hr_sum = self.hr_n + 1, self.hr_sum + hr
            self.hr_min, self.hr_max = min(self.hr_min, hr), max(self.hr_max, hr)
        self.rhythms[rhythm or "-"] += n

    def merge(self, other: _Bucket) -> None:
        self.n += other.n
        self.hr_n, self.hr_sum = self.hr_n + other.hr_n, self.hr_sum + other.hr_sum
        self.hr_min, self.hr_max = min(self.hr_min, other.hr_min), max(self.hr_max, other.hr_max)
        self.rhythms.update(other.rhythms)


def trend_bucket_ms(span_ms: int, points: int, base_ms: int) -> int:
    """Bucket width for `points` buckets over `span_ms`: a whole multiple of the stored base width."""
    return base_ms * max(1, math.ceil(span_ms / points / base_ms))


class TrendStore:
    """Per bed, vitals folded into `base_s` buckets (HR mean/min/max, rhythm counts) over `horizon_s`."""

    def __init__(self, horizon_s: float = 8 * 3600, base_s: float = 10.0) -> None:
        self.horizon_ms, self.base_ms = int(horizon_s * 1000), int(base_s * 1000)
        self._beds: dict[str, dict[int, _Bucket]] = {}
        self._seen: set[tuple[str, int]] = set()  # (bed, window end): vitals may be redelivered

    def add(self, vitals: Vitals, now_ms: int) -> None:
        end_ms = vitals.window_end_ns // MS
        if end_ms < now_ms - self.horizon_ms or (vitals.bed_id, vitals.window_end_ns) in self._seen:
            return
        self._seen.add((vitals.bed_id, vitals.window_end_ns))
        buckets = self._beds.setdefault(vitals.bed_id, {})
        start = end_ms - end_ms % self.base_ms
        buckets.setdefault(start, _Bucket()).add(vitals.heart_rate_bpm, shown_rhythm(vitals))
        if len(buckets) > 2 * self.horizon_ms // self.base_ms:  # bounded: drop what fell out of the horizon
            self.prune(now_ms)

    def prune(self, now_ms: int) -> None:
        cut = now_ms - self.horizon_ms
        for buckets in self._beds.values():
            for start in [s for s in buckets if s < cut]:
                del buckets[start]
        self._seen = {(bed, end) for bed, end in self._seen if end // MS >= cut}

    def series(
        self, bed_id: str, since_ms: int, until_ms: int | None, points: int, span_ms: int | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """(bucket width ms, points) for the bed from `since_ms` (to `until_ms`, None: everything newer, e.g. a
        replay's signal clock running ahead): about `points` buckets over `span_ms` (default until - since);
        buckets start at whole multiples of the width, so the first may be partial."""
        span = span_ms or (until_ms or since_ms + self.horizon_ms) - since_ms
        width = trend_bucket_ms(span, points, self.base_ms)
        until_ms = until_ms if until_ms is not None else 2**62
        merged: dict[int, _Bucket] = {}
        for start, bucket in self._beds.get(bed_id, {}).items():
            if since_ms <= start < until_ms:
                merged.setdefault(start - start % width, _Bucket()).merge(bucket)
        out = []
        for start in sorted(merged):
            b = merged[start]
            out.append({
                "t_ms": start,
                "hr_mean": round(b.hr_sum / b.hr_n, 1) if b.hr_n else None,
                "hr_min": b.hr_min if b.hr_n else None,
                "hr_max": b.hr_max if b.hr_n else None,
                "rhythm": b.rhythms.most_common(1)[0][0],
                "windows": b.n,
            })  # fmt: skip
        return width, out


@dataclass
class Episode:
    """One alarm from raised to cleared, as the review lists it (signal times, ms)."""

    alert_id: str
    bed_id: str
    unit: str | None
    condition: str
    priority: str
    raised_ms: int
    last_seq: int = -1
    acknowledged_ms: int | None = None
    acknowledged_by: str | None = None
    cleared_ms: int | None = None
    message: str = ""

    def row(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in REVIEW_COLUMNS}


REVIEW_COLUMNS = (
    "bed_id", "unit", "condition", "priority", "raised_ms", "acknowledged_ms", "acknowledged_by", "cleared_ms",
    "alert_id", "message",
)  # fmt: skip


class AlarmLog:
    """Every alarm episode of the horizon, with who acknowledged it (from the actions topic)."""

    def __init__(self, horizon_s: float = 8 * 3600) -> None:
        self.horizon_ms = int(horizon_s * 1000)
        self._episodes: dict[str, Episode] = {}
        self._ack_by: dict[str, str] = {}  # alert_id -> the user of the latest acknowledge action for it
        self._bed_acks: dict[str, deque[tuple[int, str]]] = {}  # bed -> (time ms, user) of "acknowledge all"

    def add_alert(self, alert: Alert) -> None:
        ep = self._episodes.get(alert.alert_id)
        if ep is None:
            ep = self._episodes[alert.alert_id] = Episode(
                alert.alert_id, alert.bed_id, alert.unit, alert.condition, alert.priority.value,
                alert.onset_time_ns // MS if alert.state is not AlertState.raised else alert.event_time_ns // MS,
            )  # fmt: skip
        if alert.seq < ep.last_seq:
            return
        ep.last_seq, ep.message = alert.seq, alert.message
        at_ms = alert.event_time_ns // MS
        if alert.state is AlertState.raised:
            ep.raised_ms = at_ms
        elif alert.state is AlertState.acknowledged:
            ep.acknowledged_ms = at_ms
            ep.acknowledged_by = self._ack_by.get(alert.alert_id) or self._bed_ack_user(alert) or ep.acknowledged_by
        elif alert.state is AlertState.cleared:
            ep.cleared_ms = at_ms

    def add_action(self, action: AlertAction) -> None:
        if action.action != "acknowledge":
            return
        if action.alert_id is not None:
            self._ack_by[action.alert_id] = action.user
            if (ep := self._episodes.get(action.alert_id)) is not None and ep.acknowledged_ms is not None:
                ep.acknowledged_by = ep.acknowledged_by or action.user
        else:
            self._bed_acks.setdefault(action.bed_id, deque(maxlen=50)).append((action.time_ns // MS, action.user))

    def _bed_ack_user(self, alert: Alert) -> str | None:
        acks = [user for t, user in self._bed_acks.get(alert.bed_id, ()) if t <= alert.published_time_ns // MS]
        return acks[-1] if acks else None

    def rows(
        self, *, since_ms: int, bed_id: str | None = None, unit: str | None = None, priorities: set[str] | None = None
    ) -> list[dict[str, Any]]:
        """Episodes raised since `since_ms` (newest first), for a bed or a unit, of the given priorities."""
        chosen = [
            ep for ep in self._episodes.values()
            if ep.raised_ms >= since_ms and bed_id in (None, ep.bed_id) and unit in (None, ep.unit)
            and (not priorities or ep.priority in priorities)
        ]  # fmt: skip
        return [ep.row() for ep in sorted(chosen, key=lambda ep: (-ep.raised_ms, ep.bed_id, ep.condition))]

    def prune(self, now_ms: int) -> None:
        cut = now_ms - self.horizon_ms
        self._episodes = {k: ep for k, ep in self._episodes.items() if ep.raised_ms >= cut or ep.cleared_ms is None}


def review_csv(rows: list[dict[str, Any]]) -> str:
    """The review as CSV, times as ISO 8601 UTC (a spreadsheet reads them), users as recorded."""
    from datetime import UTC, datetime

    def iso(ms: int | None) -> str:
        return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REVIEW_COLUMNS)
    for row in rows:
        writer.writerow([iso(row[c]) if c.endswith("_ms") else (row[c] or "") for c in REVIEW_COLUMNS])
    return out.getvalue()


class AuditLog:
    """The audit topic's records of the horizon (bounded), newest last."""

    def __init__(self, horizon_s: float = 8 * 3600, max_records: int = 50_000) -> None:
        self.horizon_ms = int(horizon_s * 1000)
        self._records: deque[AuditRecord] = deque(maxlen=max_records)

    def add(self, record: AuditRecord) -> None:
        self._records.append(record)

    def query(self, *, since_ms: int, bed_id: str | None = None, unit: str | None = None) -> list[dict[str, Any]]:
        chosen = [
            r for r in self._records
            if r.time_ns // MS >= since_ms and bed_id in (None, r.bed_id) and unit in (None, r.unit)
        ]  # fmt: skip
        return [r.model_dump(mode="json", exclude_none=True) for r in reversed(chosen)]
