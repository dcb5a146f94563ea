"""The worker's alarm stage: the pure alarm engine (streamer.alarms) configured from the bundle's manifest."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Self

import numpy as np

from models.config import InputSpec
from streamer.alarms import AlarmEngine, AlarmSettings
from streamer.assembly import StreamEvent
from streamer.contract import Alert, AlertAction, Vitals
from streamer.windows import Window

if TYPE_CHECKING:
    from models.bundle import Manifest


#: The manifest's threshold tasks the engine reads per label; "quality" is decided by its largest score and "qrs"
#: holds beat-picking settings ("peak", "refractory_s"), not labels.
LABEL_TASKS = ("rhythm", "ectopy")


def label_thresholds(thresholds: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The manifest's {task: {label: threshold}} as the engine's {label: threshold}, for its label tasks only."""
    return {label: value for task in LABEL_TASKS for label, value in thresholds.get(task, {}).items()}


def beat_settings(
    thresholds: Mapping[str, Mapping[str, float]], settings: AlarmSettings | None = None
) -> AlarmSettings:
    """``settings`` (default: AlarmSettings()) with the bundle's beat picking: manifest thresholds["qrs"] gives
    the QRS-track peak threshold ("peak") and the refractory period ("refractory_s"); absent keys keep the
    settings' values."""
    base = settings or AlarmSettings()
    qrs = thresholds.get("qrs", {})
    update = {
        "qrs_threshold": qrs.get("peak", base.qrs_threshold),
        "refractory_s": qrs.get("refractory_s", base.refractory_s),
    }
    return AlarmSettings.model_validate(base.model_dump() | update)


class AlarmStage:
    """One engine for all beds of the worker; each call stamps the wall clock for latency."""

    def __init__(
        self,
        spec: InputSpec,
        thresholds: Mapping[str, Mapping[str, float]],
        model_version: str,
        settings: AlarmSettings | None = None,
    ) -> None:
        """``thresholds``: the manifest's, as they are (label thresholds and the "qrs" beat-picking settings)."""
        self.engine = AlarmEngine(
            spec, beat_settings(thresholds, settings), thresholds=label_thresholds(thresholds),
            model_version=model_version,
        )  # fmt: skip
        self.book = self.engine.book  # the central station's per-bed settings (fed by the worker's edge)

    @classmethod
    def from_manifest(cls, manifest: Manifest, settings: AlarmSettings | None = None) -> Self:
        """The stage a worker (and `enecg evaluate`, which runs records as the worker does) builds for a bundle."""
        return cls(manifest.input, manifest.thresholds, manifest.model_version, settings)

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
