"""The central station's picture of every bed: pure state, no Kafka, no HTTP.

The feed applies records to a `Board`; each apply returns the bed whose view changed (or None when the
record changed nothing, e.g. a redelivered alert), and the server pushes that bed's view to browsers.
A browser that (re)connects gets `snapshot()` first, so no alarm state is lost across reconnects.

Alarms are keyed by ``alert_id`` and keep their latest state: a record with a lower ``seq`` than the one
held, or the same (seq, state), is a redelivery and is ignored. ``cleared`` alarms leave the active list
and stay in the history.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from models.tasks import RHYTHM_LABELS
from streamer.alarms.config import DEFAULT_CONDITIONS
from streamer.contract import Alert, AlertAction, AlertState, Priority, Vitals

PRIORITY_ORDER: dict[Priority, int] = {
    Priority.high: 0,
    Priority.medium: 1,
    Priority.low: 2,
    Priority.technical: 3,
}
RHYTHM_THRESHOLD = 0.5
#: Rhythm labels that are alarm conditions: the engine's `Vitals.calls` decide them, most serious first (the
#: conditions are listed by priority).
ENGINE_RHYTHMS = tuple(condition for condition in DEFAULT_CONDITIONS if condition in RHYTHM_LABELS)


@dataclass
class ActiveAlarm:
    alert: Alert
    ack_requested_by: str | None = None  # an acknowledge sent from a dashboard, not yet confirmed
    ack_requested_ms: int | None = None

    def view(self) -> dict[str, Any]:
        a = self.alert
        return {
            "alert_id": a.alert_id,
            "condition": a.condition,
            "priority": a.priority.value,
            "state": a.state.value,
            "acknowledged": a.state == AlertState.acknowledged,
            "ack_pending": self.ack_requested_by is not None and a.state != AlertState.acknowledged,
            "ack_requested_by": self.ack_requested_by,
            "latching": a.latching,
            "message": a.message,
            "onset_ms": a.onset_time_ns // 1_000_000,
            "event_ms": a.event_time_ns // 1_000_000,
            "heart_rate_bpm": a.evidence.heart_rate_bpm,
        }


@dataclass
class BedState:
    bed_id: str
    history_len: int
    unit: str | None = None
    vitals: Vitals | None = None
    vitals_received_ms: int | None = None  # Kafka record time of the latest vitals (staleness)
    alarms: dict[str, ActiveAlarm] = field(default_factory=dict)
    history: deque[dict[str, Any]] = field(init=False)
    audio_paused_until_ms: int = 0

    def __post_init__(self) -> None:
        self.history = deque(maxlen=self.history_len)

    def alarm_standing(self, alert_id: str) -> Literal["active", "ended"] | None:
        """Active now, ended (cleared, still in this bed's history), or never seen by this dashboard."""
        if alert_id in self.alarms:
            return "active"
        seen = any(h["alert_id"] == alert_id and h["condition"] is not None for h in self.history)  # not actions
        return "ended" if seen else None

    def view(self) -> dict[str, Any]:
        alarms = sorted(
            self.alarms.values(),
            key=lambda al: (PRIORITY_ORDER[al.alert.priority], -al.alert.event_time_ns),
        )
        v = self.vitals
        return {
            "bed_id": self.bed_id,
            "unit": self.unit,
            "vitals": None
            if v is None
            else {
                "heart_rate_bpm": None if v.heart_rate_bpm is None else round(v.heart_rate_bpm),
                "rhythm": shown_rhythm(v),
                "quality": v.quality,
                "window_end_ms": v.window_end_ns // 1_000_000,
                "settings": None if v.settings is None else v.settings.model_dump(mode="json", exclude_none=True),
            },
            "vitals_received_ms": self.vitals_received_ms,
            "alarms": [al.view() for al in alarms],
            "history": list(reversed(self.history)),
            "audio_paused_until_ms": self.audio_paused_until_ms,
        }


def shown_rhythm(vitals: Vitals) -> str | None:
    """The rhythm the page shows for a window: for the labels the alarm engine decides, its call (most serious
    first), never the model's raw score, so that the tile agrees with the alarms (AF also needs irregular RR);
    else the most probable other label at or above threshold; else None (the page shows a dash)."""
    for label in ENGINE_RHYTHMS:
        if label in vitals.calls:
            return label
    others = {k: v for k, v in vitals.rhythm.items() if k not in ENGINE_RHYTHMS}
    label, score = max(others.items(), key=lambda kv: kv[1], default=(None, 0.0))
    return label if score >= RHYTHM_THRESHOLD else None


class Board:
    """Per-bed state for the whole station (optionally one care unit)."""

    def __init__(self, history_len: int = 20, unit: str | None = None) -> None:
        self.history_len = history_len
        self.unit = unit
        self.beds: dict[str, BedState] = {}

    def _bed(self, bed_id: str, unit: str | None) -> BedState | None:
        if self.unit is not None and unit is not None and unit != self.unit:
            return None
        bed = self.beds.get(bed_id)
        if bed is None:
            if self.unit is not None and unit is None:
                return None  # a bed not yet known to be in our unit
            bed = self.beds[bed_id] = BedState(bed_id, self.history_len)
        if unit is not None:
            bed.unit = unit
        return bed

    def known_bed(self, bed_id: str) -> BedState | None:
        return self.beds.get(bed_id)

    def apply_alert(self, alert: Alert) -> BedState | None:
        bed = self._bed(alert.bed_id, alert.unit)
        if bed is None:
            return None
        held = bed.alarms.get(alert.alert_id)
        if held is not None and (
            alert.seq < held.alert.seq or (alert.seq == held.alert.seq and alert.state == held.alert.state)
        ):
            return None  # redelivery or replay of a state we already hold
        if held is None and alert.state == AlertState.cleared and self._in_history(bed, alert):
            return None
        if alert.state == AlertState.cleared:
            bed.alarms.pop(alert.alert_id, None)
        elif held is None:
            bed.alarms[alert.alert_id] = ActiveAlarm(alert)
        else:
            held.alert = alert
        bed.history.append(
            {
                "alert_id": alert.alert_id,
                "condition": alert.condition,
                "priority": alert.priority.value,
                "state": alert.state.value,
                "seq": alert.seq,
                "time_ms": alert.event_time_ns // 1_000_000,
            }
        )
        return bed

    @staticmethod
    def _in_history(bed: BedState, alert: Alert) -> bool:
        return any(h["alert_id"] == alert.alert_id and h["seq"] >= alert.seq for h in bed.history)

    def apply_vitals(self, vitals: Vitals, received_ms: int) -> BedState | None:
        bed = self._bed(vitals.bed_id, vitals.unit)
        if bed is None:
            return None
        if bed.vitals is not None and vitals.window_end_ns < bed.vitals.window_end_ns:
            return None  # older than what we show
        bed.vitals, bed.vitals_received_ms = vitals, received_ms
        return bed

    def apply_action(self, action: AlertAction) -> BedState | None:
        """Reflects a dashboard's act (ours or another station's) until the alarm engine confirms it."""
        bed = self.beds.get(action.bed_id)
        if bed is None:
            return None
        time_ms = action.time_ns // 1_000_000
        if action.action == "pause_audio":
            bed.audio_paused_until_ms = max(bed.audio_paused_until_ms, time_ms + int((action.pause_s or 0) * 1000))
        else:
            if action.alert_id is None:  # "every active alarm" means those raised before the act
                targets = [al for al in bed.alarms.values() if al.alert.published_time_ns <= action.time_ns]
            else:
                targets = [bed.alarms[action.alert_id]] if action.alert_id in bed.alarms else []
            for alarm in targets:
                alarm.ack_requested_by, alarm.ack_requested_ms = action.user, time_ms
        bed.history.append(
            {
                "alert_id": action.alert_id,
                "condition": None,
                "priority": None,
                "state": action.action,
                "seq": -1,
                "time_ms": time_ms,
                "user": action.user,
            }
        )
        return bed

    def bed_in_unit(self, bed: BedState, unit: str | None) -> bool:
        return unit is None or bed.unit == unit

    def snapshot(self, unit: str | None = None) -> list[dict[str, Any]]:
        return [b.view() for _, b in sorted(self.beds.items()) if self.bed_in_unit(b, unit)]
