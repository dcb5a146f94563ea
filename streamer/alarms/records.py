"""The alarm engine's records: an alarm episode's state, and the contract `Alert` and `Vitals` built from it and
from a window's reading. The state machine that decides when to publish is `streamer.alarms.engine`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from models.tasks import TASKS
from streamer.alarms.config import ConditionSettings
from streamer.alarms.evaluate import Reading
from streamer.contract import Alert, AlertState, Evidence, SettingsInForce, Vitals
from streamer.windows import Window

TITLES = {
    "hr_out_of_limits": "Heart rate out of limits",
    "pvc_run": "Run of PVCs",
    "frequent_pvcs": "Frequent PVCs",
    "second_monitor": "Second monitor on this bed",
    "analysis_delayed": "ECG analysis delayed",
}


@dataclass(slots=True)
class Alarm:
    """One episode of a condition on a bed, from raised to cleared."""

    alert_id: str
    condition: str
    onset_ns: int
    seq: int = 0
    acknowledged: bool = False
    ended: bool = False  # latched: the condition is over, waiting for an acknowledgement
    last_published_ns: int = 0
    hr_bpm: float | None = None
    scores: dict[str, float] = field(default_factory=dict)


def alert_record(
    bed_id: str, unit: str | None, alarm: Alarm, state: AlertState, cfg: ConditionSettings, time_ns: int,
    window: Window | None, detail: str, audio_paused: bool, wall_ns: int | None, model_version: str,
) -> Alert:  # fmt: skip
    """The alarm's record at ``time_ns`` (signal time); latency from the window's arrival when both are known."""
    message = TITLES.get(alarm.condition, alarm.condition.replace("_", " ").capitalize())
    if alarm.hr_bpm is not None:
        message += f", HR {alarm.hr_bpm:.0f} bpm"
    if detail:
        message += f" ({detail})"
    if audio_paused:
        message += " [audio paused]"
    arrival = window.arrival_ns if window is not None else None
    extra = {} if wall_ns is None else {"published_time_ns": wall_ns}
    return Alert(
        alert_id=alarm.alert_id,
        bed_id=bed_id,
        unit=unit,
        condition=alarm.condition,
        priority=cfg.priority,
        state=state,
        seq=alarm.seq,
        onset_time_ns=alarm.onset_ns,
        event_time_ns=time_ns,
        latency_ms=(wall_ns - arrival) / 1e6 if wall_ns is not None and arrival is not None else None,
        latching=cfg.latching,
        message=message,
        evidence=Evidence(
            scores=alarm.scores,
            heart_rate_bpm=alarm.hr_bpm,
            window_start_ns=window.window_start_ns if window else None,
            window_end_ns=window.window_end_ns if window else None,
        ),
        model_version=model_version,
        **extra,
    )


def vitals_record(
    bed_id: str, unit: str | None, window: Window, reading: Reading, outputs: Mapping[str, np.ndarray],
    model_version: str, settings: SettingsInForce,
) -> Vitals:  # fmt: skip
    """One window's vitals: its reading, the gates' expert weights per task and the bed's settings in force."""
    gates = np.asarray(outputs.get("gate_weights", np.zeros((len(TASKS), 0))), dtype=np.float64)
    gates = gates.reshape(len(TASKS), -1)  # (tasks, e)
    return Vitals(
        bed_id=bed_id,
        unit=unit,
        window_start_ns=window.window_start_ns,
        window_end_ns=window.window_end_ns,
        heart_rate_bpm=reading.hr_bpm,
        rhythm=reading.rhythm,
        quality=reading.quality,
        quality_scores=reading.quality_scores,
        ectopy=reading.ectopy,
        gate_weights={task: row.tolist() for task, row in zip(TASKS, gates, strict=True)},
        model_version=model_version,
        settings=settings,
        calls=sorted(c for c, v in reading.verdicts.items() if v.state == "on" and c != "signal_noisy")
        if reading.analysable
        else [],
    )
