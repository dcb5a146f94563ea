"""The alarm engine: pure per-bed state machines from model outputs to contract alerts and vitals."""

from streamer.alarms.config import DEFAULT_CONDITIONS, AlarmSettings, ConditionSettings, HrLimits
from streamer.alarms.engine import AlarmEngine, WindowOutputs, WindowResult
from streamer.alarms.evaluate import Labels

__all__ = [
    "DEFAULT_CONDITIONS",
    "AlarmEngine",
    "AlarmSettings",
    "ConditionSettings",
    "HrLimits",
    "Labels",
    "WindowOutputs",
    "WindowResult",
]
