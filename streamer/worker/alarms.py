"""The pure alarm engine (streamer.alarms) configured from a bundle's manifest, as the worker runs it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from streamer.alarms import AlarmEngine, AlarmSettings

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


def engine_from_manifest(
    manifest: Manifest, settings: AlarmSettings | None = None, engine: type[AlarmEngine] = AlarmEngine
) -> AlarmEngine:
    """The alarm engine a worker (and `enecg evaluate`, which runs records as the worker does) builds for a bundle:
    its label thresholds and beat picking from the manifest; `engine` may be a subclass (evaluation's)."""
    thresholds = manifest.thresholds
    return engine(
        manifest.input, beat_settings(thresholds, settings), thresholds=label_thresholds(thresholds),
        model_version=manifest.model_version,
    )  # fmt: skip
