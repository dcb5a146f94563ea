"""Topic contract v1: the typed records on every topic, and their codecs.

Producers and consumers share this one module so the two sides cannot drift apart. Decoding never raises
into a consumer loop: `decode_waveform` returns either a `WaveformChunk` or a `DeadLetter` saying in words
what was wrong, together with the original bytes and where they came from.

Waveform chunks come in two encodings:
- ``float``: ``samples`` holds one JSON float array per lead, in ``units`` (interoperable, verbose);
- ``int16``: ``data`` holds the samples packed int16 little-endian, lead-major (all of lead 0, then lead 1,
  ...), with value = (count - baseline) / gain in ``units``. In JSON ``data`` is base64; in the binary
  envelope the packed bytes follow a JSON header raw: ``b"ECG1" + uint32_le(len(header)) + header + data``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import struct
import time
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 1 << 20  # 1 MiB: a 1 s chunk of 12 leads at 2 kHz as JSON floats is ~300 KB
MIN_RATE_HZ, MAX_RATE_HZ = 50.0, 2000.0
MAX_LEADS = 16
MAX_CHUNK_S = 10.0  # longer chunks are refused: one message must never hold more than a few windows of one bed
#: A dead letter keeps at most this much of the original (base64 makes it 4/3 larger), so it always fits the
#: producer's request limit whatever arrived; the size and sha256 of the whole original are kept beside it.
MAX_DEAD_LETTER_ORIGINAL = 256 * 1024
MAX_DEAD_LETTER_REASON = 2000
BINARY_MAGIC = b"ECG1"
UNIT_TO_MV: dict[str, float] = {"mV": 1.0, "uV": 1e-3, "V": 1e3}
#: Samples beyond this are no body-surface ECG (monitors take pacer pulses up to ±700 mV, IEC 60601-2-27) but wrong
#: units or gain: refused, since values near float32's limit turn the model's outputs into NaN.
MAX_ABS_MV = 10_000.0

#: Bytes that travel as standard base64 in JSON (pydantic's own base64 output is the URL-safe alphabet).
Base64Bytes = Annotated[
    bytes, PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str, when_used="json")
]
BED_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
BedId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, val_json_bytes="base64")


def now_ns() -> int:
    return time.time_ns()


# --------------------------------------------------------------------------------------------- waveform


class WaveformChunk(_Record):
    """A short piece (typically 250-1000 ms) of one device's multi-lead ECG. Key on the topic: ``bed_id``."""

    schema_version: Literal[1] = SCHEMA_VERSION
    bed_id: BedId
    unit: str | None = Field(None, max_length=64, description="care unit / ward, for filtering alerts")
    device_id: str = Field(min_length=1, max_length=128)
    patient_id: str | None = Field(None, max_length=128, description="pseudonymous id; never logged")
    seq: int = Field(ge=0, description="monotonic per device, +1 per chunk")
    start_time_ns: int = Field(ge=0, description="UTC time of the first sample, ns since the epoch")
    sample_rate_hz: float = Field(ge=MIN_RATE_HZ, le=MAX_RATE_HZ)
    leads: list[str] = Field(min_length=1, max_length=MAX_LEADS)
    units: Literal["mV", "uV", "V"] = "mV"
    encoding: Literal["float", "int16"] = "float"
    samples: list[list[float]] | None = Field(None, description="float encoding: one array per lead")
    data: Base64Bytes | None = Field(None, description="int16 encoding: packed LE lead-major; base64 in JSON")
    gain: float | None = Field(None, gt=0, description="int16 encoding: counts per unit")
    baseline: int = Field(0, description="int16 encoding: count that means 0")

    @field_validator("leads")
    @classmethod
    def _unique_leads(cls, leads: list[str]) -> list[str]:
        if len(set(leads)) != len(leads):
            raise ValueError(f"lead names repeat: {leads}")
        if any(not name or len(name) > 16 for name in leads):
            raise ValueError("lead names must be 1-16 characters")
        return leads

    @model_validator(mode="after")
    def _samples_match_leads(self) -> Self:
        n_leads = len(self.leads)
        if self.encoding == "float":
            if self.samples is None or self.data is not None:
                raise ValueError("float encoding needs 'samples' (and no 'data')")
            if len(self.samples) != n_leads:
                raise ValueError(f"{n_leads} lead names but {len(self.samples)} sample arrays")
            lengths = {len(lead) for lead in self.samples}
            if len(lengths) != 1:
                raise ValueError(f"sample arrays have unequal lengths {sorted(lengths)}")
            if lengths == {0}:
                raise ValueError("chunk is empty: no samples")
            values = np.asarray(self.samples, dtype=np.float64)
            if not np.isfinite(values).all():
                raise ValueError("samples contain NaN or infinity")
            peak_mv = float(np.abs(values).max()) * UNIT_TO_MV[self.units]
        else:
            if self.data is None or self.gain is None or self.samples is not None:
                raise ValueError("int16 encoding needs 'data' and 'gain' (and no 'samples')")
            if len(self.data) == 0:
                raise ValueError("chunk is empty: no samples")
            if len(self.data) % (2 * n_leads):
                raise ValueError(f"{len(self.data)} data bytes do not split into {n_leads} int16 leads")
            peak_mv = (32768 + abs(self.baseline)) * UNIT_TO_MV[self.units] / self.gain  # the most it can encode
            if peak_mv > MAX_ABS_MV:  # only then are the samples read
                counts = np.frombuffer(self.data, dtype="<i2")
                peak_mv = max(abs(int(counts.max()) - self.baseline), abs(int(counts.min()) - self.baseline))
                peak_mv *= UNIT_TO_MV[self.units] / self.gain
        if peak_mv > MAX_ABS_MV:
            raise ValueError(
                f"samples reach {peak_mv:.3g} mV, beyond the ±{MAX_ABS_MV:,.0f} mV of any body-surface ECG "
                f"(wrong units or gain?)"
            )
        if self.duration_ns > MAX_CHUNK_S * 1e9:
            raise ValueError(
                f"chunk holds {self.duration_ns / 1e9:.1f} s of signal; a chunk may hold at most {MAX_CHUNK_S:g} s"
            )
        return self

    @property
    def n_samples(self) -> int:
        if self.samples is not None:
            return len(self.samples[0])
        assert self.data is not None
        return len(self.data) // (2 * len(self.leads))

    @property
    def duration_ns(self) -> int:
        return round(self.n_samples * 1e9 / self.sample_rate_hz)

    def millivolts(self) -> np.ndarray:
        """The samples as float64 millivolts, shape (leads, samples)."""
        scale = UNIT_TO_MV[self.units]
        if self.samples is not None:
            return np.asarray(self.samples, dtype=np.float64) * scale
        assert self.data is not None and self.gain is not None
        mv = np.frombuffer(self.data, dtype="<i2").reshape(len(self.leads), -1).astype(np.float64)  # (l, s)
        if self.baseline:  # in place, in the order (counts - baseline) / gain * scale: the same floats, no copies
            mv -= self.baseline
        mv /= self.gain
        if scale != 1.0:
            mv *= scale
        return mv

    @classmethod
    def from_millivolts(
        cls,
        signal_mv: np.ndarray,
        *,
        encoding: Literal["float", "int16"] = "float",
        gain: float = 200.0,
        **fields: Any,
    ) -> WaveformChunk:
        """Builds a chunk from a (leads, samples) array in mV; int16 rounds to 1/gain mV and clips."""
        signal_mv = np.atleast_2d(np.asarray(signal_mv, dtype=np.float64))
        if encoding == "float":
            return cls(samples=signal_mv.tolist(), encoding="float", units="mV", **fields)
        counts = np.clip(np.rint(signal_mv * gain), -32768, 32767).astype("<i2")
        return cls(data=counts.tobytes(), gain=gain, encoding="int16", units="mV", **fields)


# ------------------------------------------------------------------------------------- alerts & vitals


class Priority(StrEnum):
    """IEC 60601-1-8 alarm priorities (technical alarms are about the equipment, not the patient)."""

    high = "high"
    medium = "medium"
    low = "low"
    technical = "technical"


class AlertState(StrEnum):
    raised = "raised"
    updated = "updated"
    cleared = "cleared"
    acknowledged = "acknowledged"


class Evidence(_Record):
    scores: dict[str, float] = Field(default_factory=dict, description="model probabilities behind it")
    heart_rate_bpm: float | None = None
    window_start_ns: int | None = None
    window_end_ns: int | None = None


class Alert(_Record):
    """One state change of one alarm condition on one bed. Key on the topic: ``bed_id``.

    ``alert_id`` is derived from (bed, condition, onset), so redelivery and replay reproduce it; consumers
    de-duplicate on (alert_id, state, seq).
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    alert_id: str
    bed_id: BedId
    unit: str | None = None
    condition: str
    priority: Priority
    state: AlertState
    seq: int = Field(0, ge=0, description="state changes of this alert so far")
    onset_time_ns: int = Field(description="signal time the condition began")
    event_time_ns: int = Field(description="signal time of this state change")
    published_time_ns: int = Field(default_factory=now_ns, description="wall time the worker emitted it")
    latency_ms: float | None = Field(None, description="wall time from the newest sample seen to emission")
    latching: bool = False
    message: str = ""
    evidence: Evidence = Field(default_factory=Evidence)
    model_version: str = ""


def make_alert_id(bed_id: str, condition: str, onset_time_ns: int) -> str:
    """Deterministic id: the same event always gets the same id, whichever worker or replay sees it."""
    digest = hashlib.sha256(f"{bed_id}|{condition}|{onset_time_ns}".encode()).hexdigest()
    return digest[:24]


class Vitals(_Record):
    """The model's reading of one window of one bed. Key on the topic: ``bed_id``."""

    schema_version: Literal[1] = SCHEMA_VERSION
    bed_id: BedId
    unit: str | None = None
    window_start_ns: int
    window_end_ns: int
    heart_rate_bpm: float | None = None
    rhythm: dict[str, float] = Field(default_factory=dict)
    quality: str = "good"
    quality_scores: dict[str, float] = Field(default_factory=dict)
    ectopy: dict[str, float] = Field(default_factory=dict)
    gate_weights: dict[str, list[float]] = Field(default_factory=dict)
    model_version: str = ""
    settings: SettingsInForce | None = Field(None, description="the bed's alarm settings this window was judged by")
    calls: list[str] = Field(
        default_factory=list,
        description="conditions the alarm engine reads as present in this window (model and beat timeline "
        "together, e.g. AF needs irregular RR), before an alarm's persistence; empty when the signal is not good",
    )


class SettingsInForce(_Record):
    """The alarm settings a worker applied to a bed's window (echoed on its vitals so the page shows them)."""

    hr_low_bpm: float
    hr_high_bpm: float
    disabled: list[str] = Field(default_factory=list, description="conditions switched off for this bed")
    onset_s: dict[str, float] = Field(default_factory=dict, description="per-bed persistence overrides")
    source: Literal["bed", "unit", "default"] = Field("default", description="whose settings these are")
    changed_by: str | None = None
    changed_time_ns: int | None = None


class AlertAction(_Record):
    """A clinician's act on an alarm, from a dashboard. Key on the topic: ``bed_id``."""

    schema_version: Literal[1] = SCHEMA_VERSION
    bed_id: BedId
    alert_id: str | None = Field(None, description="None = every active alarm of the bed")
    action: Literal["acknowledge", "pause_audio"]
    user: str = Field(min_length=1, max_length=128)
    time_ns: int = Field(default_factory=now_ns)
    pause_s: float | None = Field(None, gt=0, le=600)


class DeadLetter(_Record):
    """A message that could not be used, kept with the reason so nothing is silently lost. The original is kept
    whole up to `MAX_DEAD_LETTER_ORIGINAL` bytes (a dead letter must always fit the topic, or writing it would
    fail the pipeline); beyond that it is cut, and its size and sha256 say what it was."""

    schema_version: Literal[1] = SCHEMA_VERSION
    reason: str
    original: Base64Bytes = Field(description="the message value as received (base64 in JSON), cut if too long")
    original_key: Base64Bytes | None = None
    original_size: int | None = Field(None, ge=0, description="bytes of the whole original value")
    original_sha256: str | None = Field(None, description="sha256 of the whole original value (hex)")
    truncated: bool = Field(False, description="`original` holds only the first MAX_DEAD_LETTER_ORIGINAL bytes")
    bed_id: str | None = Field(None, max_length=64, description="the bed the message names, where it names one")
    source_topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    received_time_ns: int = Field(default_factory=now_ns)

    @classmethod
    def of(
        cls,
        reason: str,
        raw: bytes | None,
        *,
        key: bytes | None = None,
        bed_id: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> DeadLetter:
        """The dead letter of `raw`, bounded in size whatever `raw`, its key and the reason are."""
        raw = raw or b""
        if len(reason) > MAX_DEAD_LETTER_REASON:
            reason = reason[: MAX_DEAD_LETTER_REASON - 1] + "…"
        return cls(
            reason=reason,
            original=raw[:MAX_DEAD_LETTER_ORIGINAL],
            original_key=None if key is None else key[:1024],
            original_size=len(raw),
            original_sha256=hashlib.sha256(raw).hexdigest(),
            truncated=len(raw) > MAX_DEAD_LETTER_ORIGINAL,
            bed_id=bed_id,
            source_topic=topic,
            partition=partition,
            offset=offset,
        )


# ------------------------------------------------------------------------------------ settings & audit

HR_LIMIT_RANGE_BPM = (20.0, 300.0)
MAX_ONSET_S = 120.0
UNIT_KEY_PREFIX = "unit/"  # key of a unit's default settings ('/' never occurs in a bed id)


def _condition_rules() -> tuple[set[str], set[str], set[str], set[str]]:
    """(all conditions, lethal ones, technical ones, those whose persistence a bed may change) from the alarm
    engine's table. Imported late: the alarm settings import this module."""
    from streamer.alarms.config import DEFAULT_CONDITIONS

    lethal = {n for n, c in DEFAULT_CONDITIONS.items() if c.priority is Priority.high and c.latching}
    technical = {n for n, c in DEFAULT_CONDITIONS.items() if c.technical}
    tunable = {n for n, c in DEFAULT_CONDITIONS.items() if c.priority in (Priority.medium, Priority.low)}
    return set(DEFAULT_CONDITIONS), lethal, technical, tunable


class BedSettings(_Record):
    """A bed's (or, with ``bed_id`` null, a care unit's default) alarm settings, set at the central station.

    Key on the compacted settings topic: ``bed_id``, or ``"unit/" + unit`` for a unit's defaults. The latest
    record per key is in force. Lethal conditions can be acknowledged but never switched off; their timing is
    their definition, so only medium and low conditions take a per-bed persistence (``onset_s``)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    bed_id: BedId | None = Field(None, description="null: the defaults of every bed of `unit` without its own")
    unit: str | None = Field(None, max_length=64, description="care unit (required for unit defaults)")
    hr_low_bpm: float = Field(50.0, description="HR below this (sustained) raises hr_out_of_limits; 20-300")
    hr_high_bpm: float = Field(120.0, description="HR above this (sustained) raises hr_out_of_limits; 20-300")
    disabled: list[str] = Field(
        default_factory=list, description="conditions switched off (never a lethal or a technical one)"
    )
    onset_s: dict[str, float] = Field(
        default_factory=dict, description=f"persistence before raising, per medium/low condition (0-{MAX_ONSET_S:g} s)"
    )
    user: str = Field(min_length=1, max_length=128, description="who changed them (authenticated at the station)")
    time_ns: int = Field(default_factory=now_ns)

    @model_validator(mode="after")
    def _sane(self) -> Self:
        low, high = HR_LIMIT_RANGE_BPM
        for name in ("hr_low_bpm", "hr_high_bpm"):
            value = getattr(self, name)
            if not (low <= value <= high) or not math.isfinite(value):
                raise ValueError(f"{name} {value:g} is outside {low:g}-{high:g} bpm")
        if self.hr_low_bpm >= self.hr_high_bpm:
            raise ValueError(f"hr_low_bpm {self.hr_low_bpm:g} must be below hr_high_bpm {self.hr_high_bpm:g}")
        known, lethal, technical, tunable = _condition_rules()
        for condition in [*self.disabled, *self.onset_s]:
            if condition not in known:
                raise ValueError(f"unknown condition {condition!r}; known: {', '.join(sorted(known))}")
        if switched := sorted(set(self.disabled) & lethal):
            raise ValueError(f"{', '.join(switched)} is lethal: it can be acknowledged, never switched off")
        if switched := sorted(set(self.disabled) & technical):
            raise ValueError(f"{', '.join(switched)} is technical: loss of monitoring always alarms, never off")
        for condition, seconds in self.onset_s.items():
            if condition not in tunable:
                raise ValueError(f"the persistence of {condition} is fixed (only medium and low conditions)")
            if not (0 <= seconds <= MAX_ONSET_S):
                raise ValueError(f"onset_s of {condition} {seconds:g} is outside 0-{MAX_ONSET_S:g} s")
        if self.bed_id is None and not self.unit:
            raise ValueError("unit defaults (bed_id null) need a unit")
        return self

    @property
    def key(self) -> str:
        return self.bed_id if self.bed_id is not None else UNIT_KEY_PREFIX + str(self.unit)


class AuditRecord(_Record):
    """One clinical change at the central station, kept for review. Key on the audit topic: ``bed_id`` (or the
    unit key for unit defaults)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["settings", "acknowledge", "pause_audio"]
    bed_id: BedId | None = None
    unit: str | None = Field(None, max_length=64)
    user: str = Field(min_length=1, max_length=128)
    time_ns: int = Field(default_factory=now_ns)
    alert_id: str | None = Field(None, description="the alarm acknowledged (null: every active alarm of the bed)")
    old: dict[str, Any] | None = Field(None, description="settings before the change (null: defaults in force)")
    new: dict[str, Any] | None = Field(None, description="settings after the change / the action")


# ---------------------------------------------------------------------------------------------- codecs


def encode(record: _Record) -> bytes:
    """JSON bytes of any contract record (bytes fields as base64)."""
    return record.model_dump_json(exclude_none=True).encode()


def encode_waveform_binary(chunk: WaveformChunk) -> bytes:
    """The compact binary envelope for int16 chunks: magic, header length, JSON header, raw samples."""
    if chunk.encoding != "int16" or chunk.data is None:
        raise ValueError("the binary envelope carries int16 chunks only")
    header = chunk.model_dump_json(exclude={"data"}, exclude_none=True).encode()
    return BINARY_MAGIC + struct.pack("<I", len(header)) + header + chunk.data


def decode_waveform(
    raw: bytes | None,
    *,
    key: bytes | None = None,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> WaveformChunk | DeadLetter:
    """Decodes one waveform message; never raises. Bad input comes back as a `DeadLetter` with a reason and,
    where the message names a bed (a JSON header whose valid `bed_id` matches the key, if any), that bed."""
    fields: dict[str, Any] = {}
    try:
        return _decode_waveform(raw or b"", fields)
    except _Rejected as rejected:
        reason = str(rejected)
    except Exception as error:  # a decoder bug must still not stop the worker
        reason = f"decoder error: {type(error).__name__}: {error}"
    return DeadLetter.of(
        reason, raw, key=key, bed_id=_named_bed(fields, key), topic=topic, partition=partition, offset=offset
    )


def _named_bed(fields: dict[str, Any], key: bytes | None) -> str | None:
    """The bed a refused message is about: its header's `bed_id` when that is a valid id and agrees with the key."""
    bed = fields.get("bed_id")
    if not isinstance(bed, str) or not BED_ID_PATTERN.fullmatch(bed):
        return None
    if key is not None and key != bed.encode():
        return None
    return bed


class _Rejected(Exception):
    pass


def _decode_waveform(raw: bytes, fields: dict[str, Any]) -> WaveformChunk:
    """`fields` receives the JSON header once parsed (so a refusal can still name the bed)."""
    if not raw:
        raise _Rejected("empty message")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise _Rejected(f"message of {len(raw)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    packed: bytes | None = None
    if raw.startswith(BINARY_MAGIC):
        if len(raw) < 8:
            raise _Rejected("binary envelope truncated before its header length")
        (header_len,) = struct.unpack_from("<I", raw, 4)
        if 8 + header_len > len(raw):
            raise _Rejected(f"binary envelope header of {header_len} bytes runs past the message end")
        header_bytes, packed = raw[8 : 8 + header_len], raw[8 + header_len :]
    else:
        header_bytes = raw
    try:
        parsed = json.loads(header_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _Rejected(f"not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise _Rejected(f"expected a JSON object, got {type(parsed).__name__}")
    fields.update(parsed)
    version = fields.get("schema_version")
    if version != SCHEMA_VERSION:
        raise _Rejected(f"unknown schema_version {version!r} (this worker reads {SCHEMA_VERSION})")
    if packed is not None:
        if fields.get("encoding") != "int16" or "data" in fields:
            raise _Rejected("binary envelope must carry an int16 header without 'data'")
        fields["data"] = packed
    elif isinstance(fields.get("data"), str):
        try:
            fields["data"] = base64.b64decode(fields["data"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise _Rejected(f"bad base64 in 'data': {error}") from None
    try:
        return WaveformChunk.model_validate(fields)
    except ValidationError as error:
        raise _Rejected(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    """One line: the first few problems, each as `field: message`."""
    parts = []
    for problem in error.errors()[:3]:
        where = ".".join(str(p) for p in problem["loc"][:2]) or "message"
        parts.append(f"{where}: {problem['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def decode_record(raw: bytes, model: type[_Record]) -> _Record:
    """Decodes alerts, vitals, actions and dead letters (these are ours; a failure raises ValueError)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise ValueError(f"not a valid {model.__name__}: {_describe(error)}") from None


#: Every record on a topic, by the name `enecg schema` uses.
RECORDS: dict[str, type[_Record]] = {
    "waveform": WaveformChunk,
    "alert": Alert,
    "vitals": Vitals,
    "alert-action": AlertAction,
    "deadletter": DeadLetter,
    "bed-settings": BedSettings,
    "audit": AuditRecord,
}
