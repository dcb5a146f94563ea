"""Which alarm settings are in force for a bed: its own record, else its unit's defaults, else the engine's.

Pure (no Kafka): the worker and the dashboard both feed it the records of the compacted settings topic and ask
it per bed. The latest record per key wins (by ``time_ns``, so a replayed older record never undoes a newer one).
"""

from __future__ import annotations

from dataclasses import dataclass

from streamer.alarms.config import HrLimits
from streamer.contract import UNIT_KEY_PREFIX, BedSettings, SettingsInForce


@dataclass(frozen=True, slots=True)
class Effective:
    """A bed's settings as the engine uses them."""

    limits: HrLimits
    disabled: frozenset[str]
    onset_s: dict[str, float]
    echo: SettingsInForce


class SettingsBook:
    def __init__(self, default_limits: HrLimits | None = None) -> None:
        self.default_limits = default_limits or HrLimits()
        self._records: dict[str, BedSettings] = {}  # key on the topic -> latest record

    def apply(self, record: BedSettings) -> bool:
        """Takes a record in; False when an equal or newer one for its key is already held."""
        held = self._records.get(record.key)
        if held is not None and held.time_ns >= record.time_ns:
            return False
        self._records[record.key] = record
        return True

    def record(self, bed_id: str, unit: str | None = None) -> BedSettings | None:
        """The record in force for the bed (its own, else its unit's), None when the defaults are."""
        own = self._records.get(bed_id)
        if own is not None:
            return own
        return self._records.get(UNIT_KEY_PREFIX + unit) if unit else None

    def for_bed(self, bed_id: str, unit: str | None = None) -> Effective:
        record = self.record(bed_id, unit)
        if record is None:
            limits = self.default_limits
            echo = SettingsInForce(hr_low_bpm=limits.low_bpm, hr_high_bpm=limits.high_bpm, source="default")
            return Effective(limits, frozenset(), {}, echo)
        echo = SettingsInForce(
            hr_low_bpm=record.hr_low_bpm, hr_high_bpm=record.hr_high_bpm, disabled=sorted(record.disabled),
            onset_s=dict(record.onset_s), source="bed" if record.bed_id is not None else "unit",
            changed_by=record.user, changed_time_ns=record.time_ns,
        )  # fmt: skip
        limits = HrLimits(low_bpm=record.hr_low_bpm, high_bpm=record.hr_high_bpm)
        return Effective(limits, frozenset(record.disabled), dict(record.onset_s), echo)

    def __len__(self) -> int:
        return len(self._records)
