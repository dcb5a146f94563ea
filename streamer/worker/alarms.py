"""The worker's alarm stage: the pure alarm engine (streamer.alarms) configured from the bundle's manifest."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from streamer.alarms import AlarmEngine, AlarmSettings
from streamer.assembly import StreamEvent
from streamer.contract import Alert, AlertAction, Vitals
from streamer.spec import StreamSpec
from streamer.windows import Window


def flat_thresholds(thresholds: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The manifest's {task: {label: threshold}} as the engine's {label: threshold}."""
    return {label: value for per_task in thresholds.values() for label, value in per_task.items()}


class AlarmStage:
    """One engine for all beds of the worker; each call stamps the wall clock for latency."""

    def __init__(
        self,
        spec: StreamSpec,
        thresholds: Mapping[str, Mapping[str, float]],
        model_version: str,
        settings: AlarmSettings | None = None,
    ) -> None:
        self.engine = AlarmEngine(spec, settings, thresholds=flat_thresholds(thresholds), model_version=model_version)

    def on_window(
        self, window: Window, output: Mapping[str, np.ndarray], now_ns: int
    ) -> tuple[list[Alert], Vitals | None]:
        result = self.engine.process_window(window, output, now_ns)
        return result.alerts, result.vitals

    def on_event(self, event: StreamEvent, now_ns: int) -> list[Alert]:
        return self.engine.process_event(event, now_ns)

    def on_action(self, action: AlertAction, now_ns: int) -> list[Alert]:
        return self.engine.apply_action(action, now_ns)

    def restore(self, published: Iterable[Alert]) -> None:
        self.engine.restore(published)

    def forget(self, bed_id: str) -> None:
        self.engine.forget(bed_id)
