"""Alarm conditions, their priorities and timing, and per-bed HR limits: validated settings with defaults.

Timing is in seconds of *analysable* signal and turned into consecutive windows with the bundle's hop:
``windows = 1 + ceil(seconds / hop_s)`` (0 s = the first window that shows the condition raises it).
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from streamer.beats import QRS_PEAK, REFRACTORY_S
from streamer.contract import Priority


class ConditionSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    priority: Priority
    latching: bool = Field(False, description="stays raised after the condition ends until acknowledged")
    onset_s: float = Field(ge=0, description="the condition must hold this long before the alarm is raised")
    clear_s: float = Field(ge=0, description="the condition must be clearly absent this long before it clears")
    technical: bool = Field(False, description="about the signal, not the patient: never suppressed by quality")


def _c(priority: Priority, onset_s: float, clear_s: float, latching: bool = False) -> ConditionSettings:
    return ConditionSettings(
        priority=priority, onset_s=onset_s, clear_s=clear_s, latching=latching, technical=priority is Priority.technical
    )


H, M, L, T = Priority.high, Priority.medium, Priority.low, Priority.technical

#: DESIGN.md's conditions. The lethal ones carry their duration in their definition (4 s without QRS, 5 or 17
#: beats), so they raise on the first window that meets it, except VF, whose score needs a second window (~4 s
#: of a 5 s window); medium/low ones need sustained evidence, since a false AF alarm every few minutes is what
#: makes nurses mute monitors. Clearing waits a few windows so a flickering score does not raise/clear/raise.
DEFAULT_CONDITIONS: dict[str, ConditionSettings] = {
    "asystole": _c(H, 0, 2, latching=True),
    "ventricular_fibrillation": _c(H, 1, 2, latching=True),
    "ventricular_tachycardia": _c(H, 0, 2, latching=True),
    "extreme_bradycardia": _c(H, 0, 3, latching=True),
    "extreme_tachycardia": _c(H, 0, 3, latching=True),
    "atrial_fibrillation": _c(M, 5, 10),
    "hr_out_of_limits": _c(M, 10, 5),
    "pvc_run": _c(M, 0, 5),
    "bigeminy": _c(L, 5, 10),
    "trigeminy": _c(L, 5, 10),
    "frequent_pvcs": _c(L, 10, 10),
    "leads_off": _c(T, 2, 0),
    # rhythm alarms are suppressed from the first unreadable window; the nurse is called after 3 unreadable
    # windows in a row (4 s of windows at a 2 s hop). Windows overlap, so one 1-2 s artefact spoils 2-3 windows:
    # at onset 2 s (2 windows) MIT-BIH 100 drew it at 4 of 4 grid phases, at 4 s at 1 of 4. More (5 windows) would
    # miss a 10 s leads-off stretch the shipped model reads unusable in only 4 windows (tests/test_worker_alarms.py)
    "signal_noisy": _c(T, 4, 2),
    "signal_lost": _c(T, 3, 0),
    "second_monitor": _c(T, 0, 0),  # two monitors stream on one bed: only the first one's signal is analysed
    # the worker analyses the bed late (it fell behind its input): raised after the worker's lateness watch's
    # onset of wall time (streamer/worker/lateness.py), cleared by the first window in time
    "analysis_delayed": _c(T, 0, 0),
}


class HrLimits(BaseModel):
    """A bed's heart-rate alarm limits (set by its clinicians)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    low_bpm: float = Field(50.0, gt=0)
    high_bpm: float = Field(120.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.low_bpm >= self.high_bpm:
            raise ValueError(f"low_bpm {self.low_bpm} must be below high_bpm {self.high_bpm}")
        return self


class AlarmSettings(BaseModel):
    """Everything the alarm engine decides with, apart from the bundle's per-label decision thresholds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    conditions: dict[str, ConditionSettings] = Field(default_factory=lambda: dict(DEFAULT_CONDITIONS))
    default_threshold: float = Field(0.5, gt=0, lt=1, description="for labels the bundle gives no threshold")
    score_hysteresis: float = Field(0.15, ge=0, lt=1, description="a score must fall this far below its threshold")
    hr_hysteresis_bpm: float = Field(5.0, ge=0, description="a rate must come back this far inside a limit")
    hr_limits: HrLimits = Field(default_factory=HrLimits, description="for beds without their own")
    # PhysioNet/CinC 2015 lethal definitions
    asystole_s: float = Field(4.0, gt=0)
    brady_bpm: float = Field(40.0, gt=0)
    brady_beats: int = Field(5, ge=2)
    tachy_bpm: float = Field(140.0, gt=0)
    tachy_beats: int = Field(17, ge=2)
    vt_bpm: float = Field(100.0, gt=0)
    vt_beats: int = Field(5, ge=2)
    # atrial fibrillation from the model and RR irregularity (streamer.alarms.rr_irregularity), calibrated on
    # synthetic rhythms only (tests/test_rr_irregularity.py, 30 s, 8 ms jitter): AF at 60-180 bpm >= 0.10; sinus,
    # brady, tachy, SVT, bigeminy, PACs, PVCs, couplets < 0.09 with medians < 0.07; trigeminy and 3-4 beat PVC
    # runs below 0.09 in >= 85 % of stretches (the model must say AF too). Flutter and AV block are not judged.
    af_rr_horizon_s: float = Field(30.0, gt=0, description="RR irregularity over the beats of this long")
    af_rr_min_intervals: int = Field(8, ge=4, description="fewer RR intervals: rhythm not judged by RR")
    af_rr_on: float = Field(0.09, gt=0, description="RR irregularity (nMASD) at or above: irregular")
    af_rr_off: float = Field(0.07, gt=0, description="below: regular, so not AF whatever the model says")
    af_rr_relief: float = Field(
        0.15, ge=0, lt=1, description="with irregular RR, AF needs p(AF) >= its threshold minus this"
    )
    # ectopy
    pvc_run_count: int = Field(3, ge=2, description="PVCs in one window for a 'run' (with no VT/bigeminy)")
    frequent_pvcs_per_min: float = Field(10.0, gt=0)
    # beats
    qrs_threshold: float = Field(QRS_PEAK, gt=0, lt=1, description="QRS-track peak for a beat (bundle: qrs.peak)")
    refractory_s: float = Field(REFRACTORY_S, gt=0, description="no two beats closer (bundle: qrs.refractory_s)")
    # updates
    update_min_interval_s: float = Field(10.0, ge=0, description="at most one 'updated' per alarm this often")
    update_hr_delta_bpm: float = Field(10.0, gt=0, description="HR change that is worth an 'updated'")
    update_score_delta: float = Field(0.2, gt=0, description="score change that is worth an 'updated'")
    default_pause_s: float = Field(120.0, gt=0, description="audio pause when the action gives none")

    @field_validator("conditions")
    @classmethod
    def _known(cls, conditions: dict[str, ConditionSettings]) -> dict[str, ConditionSettings]:
        unknown = set(conditions) - set(DEFAULT_CONDITIONS)
        if unknown:
            raise ValueError(f"unknown conditions {sorted(unknown)}; known: {sorted(DEFAULT_CONDITIONS)}")
        return {**DEFAULT_CONDITIONS, **conditions}
