"""Is each bed analysed in time? A worker that falls behind its input (overload, a slow model, a long catch-up)
still publishes every bed's vitals and alarms, only late: the dashboard sees data flowing and nothing tells the
nurse that the alarms describe the heart of a minute ago. This watch turns that into the technical alarm
``analysis_delayed``.

A window's delay is the wall time from its newest chunk's Kafka timestamp (``Window.arrival_ns``) to the alarm
step (``enecg_end_to_end_lag_ms`` measures the same to the broker's ack). A bed whose every window is concluded
later than ``max_delay_s`` for ``onset_s`` of wall time raises the alarm; its first window in time again clears
it. Onset is wall time, not a count of windows: a worker catching up on a backlog (after a restart or a
rebalance) concludes many late windows in a second or two and is in time again before the onset, which is no
alarm. Windows replayed to rebuild a bed's state are not judged (the worker passes only those an input message
completed), so an alarm a previous owner raised is cleared by the new owner's first live window in time.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from streamer.assembly import StreamEvent
from streamer.windows import Window


class LatenessSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_delay_s: float = Field(
        10.0, gt=0, description="a window concluded later than this after its input was sent is late"
    )
    onset_s: float = Field(10.0, ge=0, description="wall time a bed's windows are all late before it alarms")


@dataclass(slots=True)
class _Late:
    since_wall_ns: int  # when the bed's first late window (of this run of late windows) was concluded
    since_signal_ns: int  # that window's end, signal time: the alarm's onset
    raised: bool = False


class LatenessWatch:
    """Per bed: the current run of late windows, and whether it was announced."""

    def __init__(self, settings: LatenessSettings | None = None) -> None:
        self.settings = settings or LatenessSettings()
        self._late: dict[str, _Late] = {}
        self._in_time: set[str] = set()  # beds known to have no analysis_delayed alarm raised

    def observe(self, window: Window, now_ns: int) -> StreamEvent | None:
        """The event for the alarm engine once ``window`` is concluded at ``now_ns``: ``delayed`` when its bed
        has been late for the onset, ``in_time`` when it is in time again (and, for a bed new to this worker,
        the first time: an alarm a previous worker raised is cleared), else None."""
        bed = window.bed_id
        delay_ns = now_ns - window.arrival_ns
        if delay_ns <= self.settings.max_delay_s * 1e9:
            self._late.pop(bed, None)
            if bed in self._in_time:  # (a raised alarm takes the bed out of it)
                return None
            self._in_time.add(bed)
            return StreamEvent("in_time", bed, window.unit, window.window_end_ns, window.window_end_ns)
        late = self._late.get(bed)
        if late is None:
            late = self._late[bed] = _Late(now_ns, window.window_end_ns)
        if late.raised or now_ns - late.since_wall_ns < self.settings.onset_s * 1e9:
            return None
        late.raised = True
        self._in_time.discard(bed)
        detail = f"analysed {delay_ns / 1e9:.0f} s after the signal was sent"
        return StreamEvent("delayed", bed, window.unit, late.since_signal_ns, window.window_end_ns, detail)

    def forget(self, bed_id: str) -> None:
        self._late.pop(bed_id, None)
        self._in_time.discard(bed_id)
