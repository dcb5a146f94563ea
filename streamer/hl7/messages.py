"""HL7 v2 messages we build and read: PCD-04 ORU^R40 alerts, WCM-style ORU^R01 waveforms, and ACKs.

Parsing is python-hl7's (`hl7.parse`); building is plain segment strings with every free text escaped.
Field numbers in comments are HL7's (MSH-10 = message control id). Times are HL7 DTM in UTC with four
decimals (100 µs), the finest v2.6 allows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import hl7
import numpy as np
from pydantic import BaseModel, ValidationError

from streamer.contract import Alert, AlertState, Priority, WaveformChunk
from streamer.hl7 import mdc

ACM_PROFILE = "IHE_PCD_ACM_001^IHE PCD"
DEC_PROFILE = "IHE_PCD_001^IHE PCD"
_SEPARATORS = re.compile(r"[|^~\\&\r\n]")


class Header(BaseModel):
    """MSH-3..6: who sends, who receives."""

    sending_application: str = "ENECG"
    sending_facility: str = "ENECG"
    receiving_application: str = ""
    receiving_facility: str = ""


class Hl7Rejected(Exception):
    """A message we cannot use: `code` AR (wrong kind or structure) or AE (content), `reason` in words."""

    def __init__(self, code: str, reason: str, control_id: str = "") -> None:
        super().__init__(reason)
        self.code, self.reason, self.control_id = code, reason, control_id


def text(value: object) -> str:
    """Free text made safe for a field (HL7 separators become spaces; no escape sequences to misread)."""
    return _SEPARATORS.sub(" ", str(value))


def hl7_time(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    when = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return when.strftime("%Y%m%d%H%M%S") + f".{rest // 100_000:04d}+0000"


def parse_time(value: str) -> int:
    """HL7 DTM (YYYYMMDDHHMMSS[.ffff][+ZZZZ]) to ns since the epoch."""
    match = re.fullmatch(r"(\d{14})(?:\.(\d{1,4}))?([+-]\d{4})?", value.strip())
    if not match:
        raise ValueError(f"{value!r} is not an HL7 time YYYYMMDDHHMMSS[.ffff][+ZZZZ]")
    base = dt.datetime.strptime(match[1] + (match[3] or "+0000"), "%Y%m%d%H%M%S%z")
    fraction = int((match[2] or "0").ljust(4, "0")) * 100_000
    return int(base.timestamp()) * 1_000_000_000 + fraction


def _msh(header: Header, message_type: str, control_id: str, profile: str, now_ns: int) -> str:
    h = header
    return (
        f"MSH|^~\\&|{text(h.sending_application)}|{text(h.sending_facility)}|{text(h.receiving_application)}|"
        f"{text(h.receiving_facility)}|{hl7_time(now_ns)}||{message_type}|{text(control_id)}|P|2.6|||AL|NE||"
        f"UNICODE UTF-8|||{profile}"
    )


def _pid_pv1(bed_id: str, unit: str | None, patient_id: str | None) -> list[str]:
    pid = f"PID|1||{text(patient_id)}^^^ENECG^PI" if patient_id else "PID|1"
    return [pid, f"PV1|1|I|{text(unit or '')}^^{text(bed_id)}"]  # PV1-3: point of care^room^bed


# ------------------------------------------------------------------------------------- PCD-04 alerts

PHASES = {AlertState.raised: "start", AlertState.updated: "update", AlertState.acknowledged: "update",
          AlertState.cleared: "end"}  # fmt: skip
PRIORITIES = {Priority.high: "PH", Priority.medium: "PM", Priority.low: "PL", Priority.technical: "PL"}


def alert_control_id(alert: Alert) -> str:
    """MSH-10: the same state change always gets the same id, so an alert manager can drop a resend."""
    return f"{alert.alert_id}.{alert.seq}.{alert.state.value}"


def build_alert(alert: Alert, inactivation: str, header: Header, now_ns: int) -> str:
    """ORU^R40 for one state change of one alert: OBR with the stable alert id, OBX facets after IHE PCD-04.

    `inactivation` is MDC_ATTR_ALARM_INACTIVATION_STATE: ``enabled``, ``acknowledged`` or ``audio-paused``.
    """
    code = mdc.CONDITION_CODES.get(alert.condition, mdc.Code(alert.condition.upper(), alert.condition, mdc.LOCAL))
    source = "ST" if alert.priority is Priority.technical else "SP"
    priority = PRIORITIES[alert.priority]
    phase = PHASES[alert.state]
    state = "inactive" if alert.state is AlertState.cleared else "active"
    when = hl7_time(alert.event_time_ns)
    sub = "1.0.0.0"
    ev = alert.evidence
    segments = [
        _msh(header, "ORU^R40^ORU_R40", alert_control_id(alert), ACM_PROFILE, now_ns),
        *_pid_pv1(alert.bed_id, alert.unit, None),
        f"OBR|1|{alert.alert_id}^ENECG|{alert.alert_id}^ENECG|{mdc.EVT_ALARM.cwe()}|||{hl7_time(alert.onset_time_ns)}"
        f"|||||||||||||||{when}",
        f"OBX|1|CWE|{mdc.EVT_ALARM.cwe()}|{sub}.1|{code.cwe(text(alert.message or alert.condition))}||"
        f"|{priority}~{source}|||F|||{when}",
    ]
    if ev.heart_rate_bpm is not None:
        segments.append(
            f"OBX|2|NM|{mdc.HEART_RATE.cwe()}|{sub}.2|{ev.heart_rate_bpm:.0f}|{mdc.BEAT_PER_MIN.cwe()}|||||F|||{when}"
        )
    facets = [
        ("ST", mdc.EVENT_PHASE, phase, 3),
        ("ST", mdc.ALARM_STATE, state, 4),
        ("ST", mdc.INACTIVATION_STATE, inactivation, 5),
        ("ST", mdc.ALARM_PRIORITY, priority, 6),
        ("ST", mdc.ALERT_TYPE, source, 7),
    ]
    if ev.window_start_ns is not None and ev.window_end_ns is not None:
        window = f"{hl7_time(ev.window_start_ns)}^{hl7_time(ev.window_end_ns)}"
        facets.append(("DR", mdc.EVIDENCE_WINDOW, window, 8))
    for n, (kind, attr, value, leaf) in enumerate(facets, start=len(segments) - 3):
        segments.append(f"OBX|{n}|{kind}|{attr.cwe()}|{sub}.{leaf}|{value}||||||F")
    return "\r".join(segments)


# ------------------------------------------------------------------------------------- WCM waveforms


def build_waveform(chunk: WaveformChunk, header: Header, now_ns: int, control_id: str | None = None) -> str:
    """ORU^R01 carrying one int16 chunk: one NA OBX per lead (integer counts), then its sample rate and
    resolution (mV per count). OBR-3 is seq^device, OBR-7/8 the first and last sample times."""
    if chunk.encoding != "int16" or chunk.data is None or chunk.gain is None:
        raise ValueError("HL7 waveforms carry int16 chunks (counts and a resolution)")
    counts = np.frombuffer(chunk.data, dtype="<i2").reshape(len(chunk.leads), -1) - chunk.baseline  # (l, s)
    last_ns = chunk.start_time_ns + round((chunk.n_samples - 1) * 1e9 / chunk.sample_rate_hz)
    resolution = repr(1.0 / chunk.gain * {"mV": 1.0, "uV": 1e-3, "V": 1e3}[chunk.units])
    segments = [
        _msh(header, "ORU^R01^ORU_R01", control_id or f"{chunk.device_id}.{chunk.seq}", DEC_PROFILE, now_ns),
        *_pid_pv1(chunk.bed_id, chunk.unit, chunk.patient_id),
        f"OBR|1||{chunk.seq}^{text(chunk.device_id)}|WAVEFORM|||{hl7_time(chunk.start_time_ns)}|{hl7_time(last_ns)}",
    ]
    n = 0
    for index, lead in enumerate(chunk.leads):
        lead = mdc.MODIFIED_LEADS.get(lead, lead)
        code = mdc.LEAD_CODES.get(lead, mdc.Code("0", mdc.LEAD_PREFIX + text(lead).upper(), "MDC"))
        sub = f"1.1.1.{index + 1}"
        values = "^".join(str(int(v)) for v in counts[index])
        segments += [
            f"OBX|{n + 1}|NA|{code.cwe()}|{sub}|{values}|{mdc.DIM_DIMLESS.cwe()}|||||F",
            f"OBX|{n + 2}|NM|{mdc.SAMPLE_RATE.cwe()}|{sub}.1|{chunk.sample_rate_hz:g}|{mdc.DIM_PER_SEC.cwe()}|||||F",
            f"OBX|{n + 3}|NM|{mdc.RESOLUTION.cwe()}|{sub}.2|{resolution}|{mdc.DIM_MILLI_VOLT.cwe()}|||||F",
        ]
        n += 3
    return "\r".join(segments)


def parse_waveform(raw: bytes) -> tuple[str, WaveformChunk]:
    """(MSH-10, the chunk) of a WCM waveform ORU^R01; raises `Hl7Rejected` saying what is wrong."""
    try:
        message = hl7.parse(raw.decode("utf-8"))
        msh = message.segment("MSH")
    except (UnicodeDecodeError, KeyError, IndexError, ValueError, hl7.ParseException) as error:
        raise Hl7Rejected("AR", f"not an HL7 v2 message: {type(error).__name__}: {error}") from None
    control_id = _get(msh, 10)
    kind = f"{_get(msh, 9, 1)}^{_get(msh, 9, 2)}"
    if kind != "ORU^R01":
        raise Hl7Rejected("AR", f"unsupported message type {kind} (this gateway accepts ORU^R01 waveforms)", control_id)
    try:
        return control_id, _chunk(message)
    except Hl7Rejected as error:
        raise Hl7Rejected(error.code, error.reason, control_id) from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'chunk'}: {e['msg']}" for e in error.errors()[:3])
        raise Hl7Rejected("AE", f"waveform not valid: {problems}", control_id) from None
    except (KeyError, IndexError, ValueError) as error:
        raise Hl7Rejected("AE", f"waveform not readable: {type(error).__name__}: {error}", control_id) from None


def _chunk(message: hl7.Message) -> WaveformChunk:
    pv1, obr = _segment(message, "PV1"), _segment(message, "OBR")
    bed, unit = _get(pv1, 3, 3), _get(pv1, 3, 1) or None
    if not bed:
        raise Hl7Rejected("AE", "PV1-3 names no bed (point of care^room^bed)")
    patient = _get(_all(message, "PID")[0], 3, 1) if _all(message, "PID") else ""
    seq, device = _get(obr, 3, 1), _get(obr, 3, 2)
    if not seq.isdigit():
        raise Hl7Rejected("AE", f"OBR-3 must be seq^device with a whole seq, got {_get(obr, 3)!r}")
    start_ns = parse_time(_get(obr, 7))
    leads: list[str] = []
    counts: list[Sequence[int]] = []
    rates: set[float] = set()
    resolutions: set[float] = set()
    for obx in _all(message, "OBX"):
        name, value = _get(obx, 3, 2), _get(obx, 5)
        if _get(obx, 2) == "NA":
            if not name.startswith(mdc.LEAD_PREFIX):
                raise Hl7Rejected("AE", f"NA observation {name} is not an ECG lead ({mdc.LEAD_PREFIX}...)")
            leads.append(mdc.LEAD_OF_NAME.get(name, name.removeprefix(mdc.LEAD_PREFIX)))
            counts.append([int(v) for v in value.split("^")])
        elif name == mdc.SAMPLE_RATE.name:
            rates.add(float(value))
        elif name == mdc.RESOLUTION.name:
            resolutions.add(float(value))
    if not leads:
        raise Hl7Rejected("AE", "no waveform: no OBX of type NA")
    if len(rates) != 1 or len(resolutions) != 1:
        raise Hl7Rejected("AE", f"need one sample rate and one resolution for all leads, got {rates} / {resolutions}")
    if len({len(c) for c in counts}) != 1:
        raise Hl7Rejected("AE", f"leads have unequal sample counts {sorted({len(c) for c in counts})}")
    array = np.asarray(counts, dtype=np.int64)  # (l, s)
    if array.min() < -32768 or array.max() > 32767:
        raise Hl7Rejected("AE", "sample counts outside int16")
    return WaveformChunk(
        bed_id=bed,
        unit=unit,
        device_id=device or f"hl7:{str(message.segment('MSH')(3))}",
        patient_id=patient or None,
        seq=int(seq),
        start_time_ns=start_ns,
        sample_rate_hz=rates.pop(),
        leads=leads,
        units="mV",
        encoding="int16",
        data=array.astype("<i2").tobytes(),
        gain=1.0 / resolutions.pop(),
    )


def _get(segment: hl7.Segment, field: int, component: int | None = None) -> str:
    """Field (or one component of its first repetition) as text; "" when absent."""
    try:
        value = str(segment(field))
    except IndexError:
        return ""
    if component is None:
        return value
    parts = value.split("~")[0].split("^")
    return parts[component - 1] if len(parts) >= component else ""


def _all(message: hl7.Message, name: str) -> list[hl7.Segment]:
    try:
        return list(message.segments(name))
    except KeyError:
        return []


def _segment(message: hl7.Message, name: str) -> hl7.Segment:
    try:
        return message.segment(name)
    except KeyError:
        raise Hl7Rejected("AR", f"no {name} segment") from None


# ---------------------------------------------------------------------------------------------- ACKs


class AckReply(BaseModel):
    code: str  # AA, AE, AR (or CA/CE/CR)
    control_id: str  # MSA-2: the message it answers
    text: str = ""


def build_ack(control_id: str, code: str, header: Header, now_ns: int, reason: str = "") -> str:
    """ACK with MSA-1 code, MSA-2 the answered control id, MSA-3 and ERR-8 the reason in words."""
    msh = _msh(header, "ACK^R01^ACK", f"ACK.{control_id}", "", now_ns).rstrip("|")
    segments = [msh, f"MSA|{code}|{text(control_id)}|{text(reason)[:80]}"]
    if reason:
        segments.append(f"ERR||||{'E' if code != 'AA' else 'I'}||||{text(reason)}")
    return "\r".join(segments)


def parse_ack(raw: bytes) -> AckReply:
    """The MSA of an ACK; raises ValueError when it is not one."""
    try:
        message = hl7.parse(raw.decode("utf-8"))
        msa = message.segment("MSA")
    except (UnicodeDecodeError, KeyError, hl7.ParseException) as error:
        raise ValueError(f"not an HL7 ACK: {error}") from None
    reason = _get(msa, 3)
    if not reason and _all(message, "ERR"):
        reason = _get(_all(message, "ERR")[0], 8)
    return AckReply(code=_get(msa, 1), control_id=_get(msa, 2), text=reason)
