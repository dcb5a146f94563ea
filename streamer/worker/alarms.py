"""Adapter between the worker core and the alarm engine (streamer.alarms): one engine state per bed."""

from __future__ import annotations

import numpy as np

from models.tasks import ECTOPY_LABELS, QUALITY_LABELS, RHYTHM_LABELS, TASKS
from streamer.assembly import StreamEvent
from streamer.contract import Alert, AlertAction, Vitals
from streamer.windows import Window


class AlarmStage:
    """Turns one window's model outputs into Vitals (and, with the engine, Alerts)."""

    def __init__(self, model_version: str) -> None:
        self.model_version = model_version

    def on_window(self, window: Window, output: dict[str, np.ndarray], now_ns: int) -> tuple[list[Alert], Vitals]:
        return [], self.vitals(window, output)

    def on_event(self, event: StreamEvent, now_ns: int) -> list[Alert]:
        return []

    def on_action(self, action: AlertAction, now_ns: int) -> list[Alert]:
        return []

    def forget(self, bed_id: str) -> None:
        pass

    def vitals(self, window: Window, output: dict[str, np.ndarray]) -> Vitals:
        rr_s = float(output["rr_s"])
        quality = output["quality_prob"]
        return Vitals(
            bed_id=window.bed_id,
            unit=window.unit,
            window_start_ns=window.window_start_ns,
            window_end_ns=window.window_end_ns,
            heart_rate_bpm=round(60.0 / rr_s, 1) if rr_s > 0.1 else None,
            rhythm={k: round(float(v), 4) for k, v in zip(RHYTHM_LABELS, output["rhythm_prob"], strict=True)},
            quality=QUALITY_LABELS[int(np.argmax(quality))],
            quality_scores={k: round(float(v), 4) for k, v in zip(QUALITY_LABELS, quality, strict=True)},
            ectopy={k: round(float(v), 4) for k, v in zip(ECTOPY_LABELS, output["ectopy_prob"], strict=True)},
            gate_weights={
                t: [round(float(x), 4) for x in w] for t, w in zip(TASKS, output["gate_weights"], strict=True)
            },  # noqa: E501
            model_version=self.model_version,
        )
