"""The alarm engine: one small state machine per bed, fed windows' model outputs, stream events and clinicians'
actions; it returns contract `Alert`s and `Vitals`. No Kafka and no clock inside: times are signal times from
the windows and events (``wall_ns``, when the worker passes it, only stamps ``published_time_ns``/latency).

Per condition and bed: consecutive "on" windows raise it (onset = the first of them, so ids are deterministic:
``make_alert_id(bed, condition, onset)``); consecutive "off" windows clear it; "hold" breaks both streaks.
Windows whose quality is not good leave rhythm conditions' streaks untouched and feed `signal_noisy` instead; beats
before such a window, or before a window that sees asystole, make no RR interval with beats after it (no false
bradycardia across a leads-off stretch, nor as the heart restarts after a pause the asystole alarm covers).
Latching alarms whose condition ended stay raised until acknowledged, then clear.

Restart: the worker rebuilds state by replaying >= 30 s of input (the beat timeline needs ~17 beats; the AF rule
judges RR on the beats it has, from 8 intervals, up to its 30 s horizon) after
calling `restore` with this bed's recent records from the alerts topic. `restore` reinstates the alarms not yet
cleared (same id, seq, state), drops any emission whose (alert_id, seq) was already published, and does not
start a new episode of a condition at a signal time it had already published a record for.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from models.config import InputSpec
from streamer.alarms.bed_settings import SettingsBook
from streamer.alarms.config import AlarmSettings, HrLimits
from streamer.alarms.evaluate import UNREADABLE, Labels, Reading, Verdict, evaluate
from streamer.alarms.records import Alarm, alert_record, vitals_record
from streamer.assembly import StreamEvent
from streamer.beats import BeatTimeline, pick_beats_rows
from streamer.contract import Alert, AlertAction, AlertState, Vitals, make_alert_id
from streamer.windows import Window

log = logging.getLogger("streamer.alarms")
RHYTHM_CONDITIONS = (
    "asystole", "ventricular_fibrillation", "ventricular_tachycardia", "extreme_bradycardia", "extreme_tachycardia",
    "atrial_fibrillation", "hr_out_of_limits", "pvc_run", "bigeminy", "trigeminy", "frequent_pvcs",
)  # fmt: skip


#: Verdict values that are measurements, not model scores: they never make an alarm worth an 'updated'.
_NOT_SCORES = {"rate_bpm", "no_qrs_s", "pvc_per_min", "low_bpm", "high_bpm", "rr_irregularity"}


@dataclass(slots=True)
class _Ctx:
    """Where a state change comes from: a window (with its reading) or an event/action at ``time_ns``."""

    window: Window | None
    reading: Reading | None
    wall_ns: int | None
    at_ns: int | None = None
    detail: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    onset_s: dict[str, float] = field(default_factory=dict)  # the bed's persistence overrides

    @property
    def time_ns(self) -> int:
        if self.window is not None:
            return self.window.window_end_ns
        assert self.at_ns is not None
        return self.at_ns


@dataclass(slots=True)
class _Bed:
    bed_id: str
    unit: str | None = None
    now_ns: int = 0  # latest signal time known (windows and events): actions are dated by it
    seen_ns: int = 0  # end of the newest window processed: only windows move it (replays are skipped by it)
    segment_start_ns: int | None = None
    rates_from_ns: int | None = None  # end of the newest unreadable or asystole window: rates use beats after it
    timeline: BeatTimeline = field(default_factory=BeatTimeline)
    active: dict[str, Alarm] = field(default_factory=dict)
    on_streak: dict[str, int] = field(default_factory=dict)
    first_on_ns: dict[str, int] = field(default_factory=dict)
    off_streak: dict[str, int] = field(default_factory=dict)
    published: dict[str, int] = field(default_factory=dict)  # alert_id -> highest seq already on the topic
    horizon_ns: dict[str, int] = field(default_factory=dict)  # condition -> latest signal time published
    hr_limits: HrLimits | None = None
    audio_paused_until_ns: int = 0


@dataclass(frozen=True, slots=True)
class WindowOutputs:
    """One window's slice of a model call's outputs (`AlarmEngine.split`)."""

    values: dict[str, np.ndarray]  # keyed by OUTPUT_NAMES, batch axis removed
    beats_s: np.ndarray | None  # its beats, s from the window's start; None: outputs not finite or misshapen


@dataclass(slots=True)
class WindowResult:
    alerts: list[Alert]
    vitals: Vitals | None  # None for a window older than the bed's state (a replay the engine already saw)


class AlarmEngine:
    def __init__(
        self,
        spec: InputSpec,
        settings: AlarmSettings | None = None,
        *,
        thresholds: Mapping[str, float] | None = None,
        labels: Labels | None = None,
        model_version: str = "",
        book: SettingsBook | None = None,
    ) -> None:
        """``book``: the per-bed settings from the central station (HR limits, conditions off, persistence)."""
        self.spec = spec
        self.settings = settings or AlarmSettings()
        self.thresholds = dict(thresholds or {})
        self.labels = labels or Labels()
        self.model_version = model_version
        self.book = book if book is not None else SettingsBook(self.settings.hr_limits)
        self._beds: dict[str, _Bed] = {}

    # ----------------------------------------------------------------------------------------- inputs

    def set_hr_limits(self, bed_id: str, limits: HrLimits | None) -> None:
        self._bed(bed_id).hr_limits = limits

    def split(self, outputs: Mapping[str, np.ndarray], n: int) -> list[WindowOutputs]:
        """A model call's outputs for ``n`` windows (batch axis first), window by window. Whether each window's
        outputs are all finite and the beats of every QRS track are worked out for the whole call at once
        (`pick_beats_rows`): window by window, numpy's per-call overhead cost more than the arithmetic. Should that
        fail (outputs of the wrong shape, a bug meeting outputs nobody foresaw), every window of the call counts as
        unusable signal: its beds raise signal_noisy, and the worker goes on."""
        try:
            values = [{name: value[i] for name, value in outputs.items()} for i in range(n)]
            finite = np.ones(n, dtype=bool)
            for value in outputs.values():
                finite &= np.isfinite(value).reshape(n, -1).all(axis=1)
            step_s = self.spec.qrs_stride / self.spec.sample_rate_hz
            qrs = np.asarray(outputs["qrs_prob"]).reshape(n, -1)  # (n, t_qrs)
            beats = pick_beats_rows(qrs, step_s, self.settings.qrs_threshold, self.settings.refractory_s)
        except Exception:
            log.exception("reading a model call's outputs failed: its %d windows count as unusable signal", n)
            return [WindowOutputs({}, None) for _ in range(n)]
        return [WindowOutputs(v, b if ok else None) for v, b, ok in zip(values, beats, finite.tolist(), strict=True)]

    def process_window(
        self, window: Window, outputs: Mapping[str, np.ndarray], wall_ns: int | None = None
    ) -> WindowResult:
        """One window's outputs alone (keyed by OUTPUT_NAMES, batch axis removed): `judge` of its `split`."""
        one = {name: np.asarray(value)[None] for name, value in outputs.items()}
        return self.judge(window, self.split(one, 1)[0], wall_ns)

    def judge(self, window: Window, outputs: WindowOutputs, wall_ns: int | None = None) -> WindowResult:
        """One window of a `split` model call -> alerts and the window's vitals (windows of a bed in order)."""
        alerts: list[Alert] = []
        try:
            return WindowResult(alerts, self._judge(window, outputs, wall_ns, alerts))
        except Exception:
            alerts += self._failed(window.bed_id, window.window_end_ns, wall_ns, "a window")
            return WindowResult(alerts, None)

    def _judge(self, window: Window, outputs: WindowOutputs, wall_ns: int | None, alerts: list[Alert]) -> Vitals | None:
        """`judge`'s work; each alert joins ``alerts`` as it is made (kept should a later step fail)."""
        bed = self._bed(window.bed_id, window.unit)
        if window.window_end_ns <= bed.seen_ns and bed.segment_start_ns == window.segment_start_ns:
            return None  # replayed window: the state already has it
        if bed.segment_start_ns != window.segment_start_ns:  # after a gap: streaks start over
            if window.segment_start_ns < bed.seen_ns:  # the bed's stream restarted earlier (a device clock reset)
                bed.seen_ns, bed.rates_from_ns = 0, None
                bed.horizon_ns.clear()
            bed.segment_start_ns = window.segment_start_ns
            bed.on_streak.clear(), bed.off_streak.clear(), bed.first_on_ns.clear()
        bed.seen_ns = window.window_end_ns
        bed.now_ns = max(bed.now_ns, window.window_end_ns)
        chosen = self.book.for_bed(bed.bed_id, bed.unit)
        reading = self._read(bed, window, outputs, bed.hr_limits or chosen.limits)
        values = outputs.values if reading is not UNREADABLE else {}  # no gate weights in its vitals either
        ctx = _Ctx(window, reading, wall_ns, onset_s=chosen.onset_s)
        for condition in RHYTHM_CONDITIONS:
            if condition in chosen.disabled:  # switched off for this bed: never raised, an active one ends now
                alerts += self._switched_off(bed, condition, ctx)
            elif reading.analysable:  # poor quality: rhythm streaks neither advance nor reset
                alerts += self._step(bed, condition, reading.verdicts[condition], ctx)
        if not reading.analysable or reading.verdicts["asystole"].state == "on":
            bed.rates_from_ns = window.window_end_ns  # beats on either side make no RR interval
        alerts += self._step(bed, "signal_noisy", reading.verdicts["signal_noisy"], ctx)
        vitals = vitals_record(bed.bed_id, bed.unit, window, reading, values, self.model_version, chosen.echo)
        for condition in ("signal_lost", "leads_off"):  # a window judged whole means signal and leads are back
            alerts += self._step(bed, condition, Verdict("off"), ctx)
        return vitals

    def _read(self, bed: _Bed, window: Window, outputs: WindowOutputs, limits: HrLimits) -> Reading:
        """The window's reading. Outputs that are not all finite (a model overflowing: NaN read as a QRS track is
        no beats, that is asystole), or that fail to be read (a bug meeting an input nobody foresaw), are no
        reading of the patient: the window counts as unusable signal (`signal_noisy`), never as a rhythm, and the
        bed's state goes on (failures past the reading: `_failed`)."""
        if outputs.beats_s is None:
            return UNREADABLE
        try:
            start, end = window.window_start_ns, window.window_end_ns
            bed.timeline.add_window(start, end, window.segment_start_ns, outputs.beats_s)
            stats = bed.timeline.stats(start, end, bed.rates_from_ns)
            return evaluate(
                outputs.values, stats, labels=self.labels, thresholds=self.thresholds, settings=self.settings,
                limits=limits, window_s=self.spec.window_s,
            )  # fmt: skip
        except Exception:
            log.exception("reading the outputs of bed %s (window end %d) failed", bed.bed_id, window.window_end_ns)
            return UNREADABLE

    def process_event(self, event: StreamEvent, wall_ns: int | None = None) -> list[Alert]:
        """Assembler events -> technical alarms: leads_missing/leads_restored -> leads_off; gap/stalled ->
        signal_lost (a stall is raised at once: the assembler's stall_s was its persistence); second_device(_gone)
        -> second_monitor; delayed/in_time (the worker's lateness watch) -> analysis_delayed. An event never moves
        the clock that tells replayed windows from new ones: a stall's end is wall-clock silence added to signal
        time, and the bed's next real windows (signal resuming where it stopped) come before it."""
        try:
            return self._on_event(event, wall_ns)
        except Exception:
            return self._failed(event.bed_id, event.end_ns, wall_ns, f"a {event.kind} event")

    def _on_event(self, event: StreamEvent, wall_ns: int | None) -> list[Alert]:
        bed = self._bed(event.bed_id, event.unit)
        bed.now_ns = max(bed.now_ns, event.end_ns)
        cfg = self.settings.conditions
        ctx = _Ctx(None, None, wall_ns, event.end_ns, event.detail)
        if event.kind == "leads_missing":
            if event.end_ns - event.start_ns >= cfg["leads_off"].onset_s * 1e9:
                return self._raise(bed, "leads_off", event.start_ns, {}, ctx)
            return []
        if event.kind == "leads_restored":
            return self._end(bed, "leads_off", ctx)
        if event.kind == "stalled":
            return self._raise(bed, "signal_lost", event.start_ns, {}, ctx)
        if event.kind == "second_device":
            return self._raise(bed, "second_monitor", event.start_ns, {}, ctx)
        if event.kind == "second_device_gone":
            return self._end(bed, "second_monitor", ctx)
        if event.kind == "delayed":
            return self._raise(bed, "analysis_delayed", event.start_ns, {}, ctx)
        if event.kind == "in_time":
            return self._end(bed, "analysis_delayed", ctx)
        lost_s = (event.end_ns - event.start_ns) / 1e9
        if lost_s < cfg["signal_lost"].onset_s:  # a short gap: the next window says whether signal is back
            return []
        at = event.start_ns + round(cfg["signal_lost"].onset_s * 1e9)  # a gap already over: raised and cleared
        alerts = self._raise(bed, "signal_lost", event.start_ns, {}, _Ctx(None, None, wall_ns, at, event.detail))
        return alerts + self._end(bed, "signal_lost", ctx)

    def apply_action(self, action: AlertAction, wall_ns: int | None = None) -> list[Alert]:
        """acknowledge: -> acknowledged (and cleared, if a latched condition had ended); pause_audio: recorded on
        the bed for ``pause_s`` and announced as an `updated`. ``alert_id`` None = every active alarm of the bed."""
        bed = self._beds.get(action.bed_id)
        if bed is None:
            return []
        try:
            return self._on_action(bed, action, wall_ns)
        except Exception:
            return self._failed(bed.bed_id, bed.now_ns, wall_ns, f"a nurse's {action.action}")

    def _on_action(self, bed: _Bed, action: AlertAction, wall_ns: int | None) -> list[Alert]:
        targets = [a for a in bed.active.values() if action.alert_id in (None, a.alert_id)]
        ctx = _Ctx(None, None, wall_ns, bed.now_ns, f"by {action.user}")
        alerts: list[Alert] = []
        if action.action == "pause_audio":
            pause_s = action.pause_s or self.settings.default_pause_s
            bed.audio_paused_until_ns = bed.now_ns + round(pause_s * 1e9)
            ctx.detail = f"audio paused {pause_s:.0f} s"
            for alarm in targets:
                alerts += self._publish(bed, alarm, AlertState.updated, ctx)
            return alerts
        for alarm in targets:
            if alarm.acknowledged:
                continue
            alarm.acknowledged = True
            alerts += self._publish(bed, alarm, AlertState.acknowledged, ctx)
            if alarm.ended:
                alerts += self._clear(bed, alarm, ctx)
        return alerts

    def restore(self, published: Iterable[Alert]) -> None:
        """Tells the engine what is already on the alerts topic (after a restart): see the module docstring."""
        latest: dict[str, Alert] = {}
        acknowledged: set[str] = set()
        for alert in published:
            if alert.alert_id not in latest or alert.seq > latest[alert.alert_id].seq:
                latest[alert.alert_id] = alert
            if alert.state is AlertState.acknowledged:
                acknowledged.add(alert.alert_id)
        for alert in latest.values():
            bed = self._bed(alert.bed_id, alert.unit)
            bed.now_ns = max(bed.now_ns, alert.event_time_ns)  # an acknowledge before any window is dated by it
            bed.published[alert.alert_id] = alert.seq
            bed.horizon_ns[alert.condition] = max(bed.horizon_ns.get(alert.condition, 0), alert.event_time_ns)
            if alert.state is not AlertState.cleared:
                bed.active[alert.condition] = Alarm(
                    alert.alert_id, alert.condition, alert.onset_time_ns, alert.seq,
                    acknowledged=alert.alert_id in acknowledged,
                    last_published_ns=alert.event_time_ns, hr_bpm=alert.evidence.heart_rate_bpm,
                    scores=dict(alert.evidence.scores),
                )  # fmt: skip

    def forget(self, bed_id: str) -> None:
        self._beds.pop(bed_id, None)

    def timeline(self, bed_id: str) -> BeatTimeline | None:
        """The bed's beat timeline (its recent beats; None for a bed the engine does not hold)."""
        bed = self._beds.get(bed_id)
        return bed.timeline if bed else None

    def active_alerts(self, bed_id: str) -> dict[str, str]:
        """condition -> alert_id of the bed's alarms not yet cleared."""
        bed = self._beds.get(bed_id)
        return {c: a.alert_id for c, a in bed.active.items()} if bed else {}

    def _failed(self, bed_id: str, at_ns: int, wall_ns: int | None, what: str) -> list[Alert]:
        """The engine failed on one bed's input: a bug meeting a state nobody foresaw. Raised out of the engine, it
        would stop the worker, and its restart meet the same input again: every bed of the worker unwatched.
        Instead the bed's analysis starts over (beat timeline, streaks; its alarms stand) and it raises
        signal_lost, which its next windows read again clear. Should even that fail, the bed's state is dropped."""
        log.exception("the alarm engine failed on bed %s (%s): the bed's analysis starts over", bed_id, what)
        try:
            old = self._beds.pop(bed_id, None) or _Bed(bed_id)
            bed = self._beds[bed_id] = _Bed(
                bed_id, old.unit, now_ns=max(old.now_ns, at_ns), seen_ns=old.seen_ns,
                segment_start_ns=old.segment_start_ns, rates_from_ns=at_ns, active=old.active,
                published=old.published, horizon_ns=old.horizon_ns, hr_limits=old.hr_limits,
                audio_paused_until_ns=old.audio_paused_until_ns,
            )  # fmt: skip
            ctx = _Ctx(None, None, wall_ns, bed.now_ns, f"the analysis failed on {what} and starts over")
            return self._raise(bed, "signal_lost", at_ns, {}, ctx)
        except Exception:
            log.exception("raising signal lost for bed %s failed too: its alarm state is dropped", bed_id)
            self._beds.pop(bed_id, None)
            return []

    # --------------------------------------------------------------------------------- state machine

    def _windows(self, seconds: float) -> int:
        return 1 + math.ceil(seconds / self.spec.hop_s - 1e-9)

    def _step(self, bed: _Bed, condition: str, verdict: Verdict, ctx: _Ctx) -> list[Alert]:
        cfg = self.settings.conditions[condition]
        alarm = bed.active.get(condition)
        ctx.scores = verdict.scores
        if ctx.time_ns <= bed.horizon_ns.get(condition, -1):  # published before a restart: that record stands
            bed.on_streak[condition] = bed.off_streak[condition] = 0
            return []
        if verdict.state == "on":
            bed.off_streak[condition] = 0
            if alarm is not None:
                alarm.ended = False
                return self._maybe_update(bed, alarm, ctx)
            if bed.on_streak.get(condition, 0) == 0:
                bed.first_on_ns[condition] = ctx.time_ns
            bed.on_streak[condition] = bed.on_streak.get(condition, 0) + 1
            if bed.on_streak[condition] >= self._windows(ctx.onset_s.get(condition, cfg.onset_s)):
                return self._raise(bed, condition, bed.first_on_ns[condition], verdict.scores, ctx)
            return []
        bed.on_streak[condition] = 0
        if verdict.state == "hold" or alarm is None or alarm.ended:
            bed.off_streak[condition] = 0
            return []
        bed.off_streak[condition] = bed.off_streak.get(condition, 0) + 1
        if bed.off_streak[condition] >= self._windows(cfg.clear_s):
            return self._end(bed, condition, ctx)
        return []

    def _switched_off(self, bed: _Bed, condition: str, ctx: _Ctx) -> list[Alert]:
        bed.on_streak[condition] = bed.off_streak[condition] = 0
        alarm = bed.active.get(condition)
        if alarm is None:
            return []
        detail, ctx.detail = ctx.detail, "switched off at the central station"
        try:
            return self._clear(bed, alarm, ctx)
        finally:
            ctx.detail = detail

    def _raise(self, bed: _Bed, condition: str, onset_ns: int, scores: dict[str, float], ctx: _Ctx) -> list[Alert]:
        if condition in bed.active:
            return []
        alarm = Alarm(make_alert_id(bed.bed_id, condition, onset_ns), condition, onset_ns, scores=dict(scores))
        bed.active[condition] = alarm
        bed.on_streak[condition] = 0
        return self._publish(bed, alarm, AlertState.raised, ctx, first=True)

    def _end(self, bed: _Bed, condition: str, ctx: _Ctx) -> list[Alert]:
        """The condition is over: clear, unless it latches and nobody acknowledged it yet."""
        alarm = bed.active.get(condition)
        if alarm is None:
            return []
        bed.off_streak[condition] = 0
        if self.settings.conditions[condition].latching and not alarm.acknowledged:
            alarm.ended = True
            return []
        return self._clear(bed, alarm, ctx)

    def _clear(self, bed: _Bed, alarm: Alarm, ctx: _Ctx) -> list[Alert]:
        del bed.active[alarm.condition]
        return self._publish(bed, alarm, AlertState.cleared, ctx)

    def _maybe_update(self, bed: _Bed, alarm: Alarm, ctx: _Ctx) -> list[Alert]:
        s = self.settings
        if self.settings.conditions[alarm.condition].technical or ctx.reading is None:
            return []
        if ctx.time_ns - alarm.last_published_ns < s.update_min_interval_s * 1e9:
            return []
        hr = ctx.reading.hr_bpm
        hr_moved = hr is not None and (alarm.hr_bpm is None or abs(hr - alarm.hr_bpm) >= s.update_hr_delta_bpm)
        keys = set(ctx.scores) & set(alarm.scores) - _NOT_SCORES
        score_moved = any(abs(ctx.scores[k] - alarm.scores[k]) >= s.update_score_delta for k in keys)
        if not (hr_moved or score_moved):
            return []
        return self._publish(bed, alarm, AlertState.updated, ctx)

    def _publish(self, bed: _Bed, alarm: Alarm, state: AlertState, ctx: _Ctx, first: bool = False) -> list[Alert]:
        if not first:
            alarm.seq += 1
        alarm.last_published_ns = ctx.time_ns
        if ctx.reading is not None:
            alarm.hr_bpm, alarm.scores = ctx.reading.hr_bpm, dict(ctx.scores)
        if bed.published.get(alarm.alert_id, -1) >= alarm.seq:
            return []  # already on the topic (restart): idempotent by (alert_id, seq)
        paused = bed.audio_paused_until_ns > ctx.time_ns
        cfg = self.settings.conditions[alarm.condition]
        return [alert_record(bed.bed_id, bed.unit, alarm, state, cfg, ctx.time_ns, ctx.window, ctx.detail, paused,
                             ctx.wall_ns, self.model_version)]  # fmt: skip

    # --------------------------------------------------------------------------------------- helpers

    def _bed(self, bed_id: str, unit: str | None = None) -> _Bed:
        bed = self._beds.get(bed_id)
        if bed is None:
            bed = self._beds[bed_id] = _Bed(bed_id)
        if unit is not None:
            bed.unit = unit
        return bed
