"""HL7 message building and reading without a broker or a link: python-hl7 must parse what we build."""

from __future__ import annotations

import hl7
import numpy as np
import pytest

from streamer.contract import Alert, AlertState, Evidence, Priority, WaveformChunk
from streamer.hl7 import mdc
from streamer.hl7.messages import Header, build_ack, build_alert, build_waveform, hl7_time, parse_ack, parse_time

ONSET = 1_795_600_012_000_000_000


def vt_alert(state: AlertState, priority: Priority = Priority.high, condition: str = "ventricular_tachycardia"):
    return Alert(
        alert_id="4118aa9d7105c06ed90a49e7", bed_id="icu-07", unit="ICU", condition=condition, priority=priority,
        state=state, onset_time_ns=ONSET, event_time_ns=ONSET + 3_000_000_000, message="VT | HR ^182",
        evidence=Evidence(heart_rate_bpm=182.0, window_start_ns=ONSET - 2_000_000_000, window_end_ns=ONSET),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("state", "priority", "condition", "phase", "alarm_state", "flags"),
    [
        (AlertState.raised, Priority.high, "ventricular_tachycardia", "start", "active", "PH~SP"),
        (AlertState.updated, Priority.medium, "atrial_fibrillation", "update", "active", "PM~SP"),
        (AlertState.acknowledged, Priority.low, "bigeminy", "update", "active", "PL~SP"),
        (AlertState.cleared, Priority.technical, "leads_off", "end", "inactive", "PL~ST"),
    ],
)
def test_alert_message_parses_and_carries_the_acm_facets(state, priority, condition, phase, alarm_state, flags):
    message = hl7.parse(build_alert(vt_alert(state, priority, condition), "enabled", Header(), ONSET))
    assert str(message.segment("MSH")(21)) == "IHE_PCD_ACM_001^IHE PCD"
    identity = message.segments("OBX")[0]
    assert str(identity(8)) == flags
    assert str(identity(5)).split("^")[:3] == list(mdc.CONDITION_CODES[condition][:3])
    facets = {str(o(3)).split("^")[1]: str(o(5)) for o in message.segments("OBX")}
    assert facets["MDC_ATTR_EVENT_PHASE"] == phase and facets["MDC_ATTR_ALARM_STATE"] == alarm_state
    assert facets["MDC_ECG_HEART_RATE"] == "182"
    assert "|" not in str(identity(5)).split("^")[-1]  # free text cannot break the message


def test_mdc_codes_are_the_published_ones():
    assert mdc.CONDITION_CODES["asystole"][:2] == ("199684", "MDC_EVT_ECG_ASYSTOLE")  # 3:3076
    assert mdc.CONDITION_CODES["atrial_fibrillation"][:2] == ("199736", "MDC_EVT_ECG_ATR_FIB")  # 3:3128
    assert mdc.CONDITION_CODES["ventricular_tachycardia"].system == mdc.LOCAL  # no published MDC code found
    assert mdc.LEAD_CODES["II"].code == "131330" and mdc.LEAD_CODES["I"].code == "131329"


def test_times_round_trip_to_100_us():
    ns = 1_795_600_000_123_456_789
    assert parse_time(hl7_time(ns)) == ns - ns % 100_000
    assert parse_time("20261125094640+0100") == parse_time("20261125084640")


def test_waveform_round_trip_and_ack():
    from streamer.hl7.messages import parse_waveform

    chunk = WaveformChunk.from_millivolts(
        np.array([[0.1, -0.2, 0.3], [1.0, 2.0, -3.0]]), encoding="int16", gain=200.0, bed_id="b1", unit="ICU",
        device_id="mon-1", seq=7, start_time_ns=1_795_600_000_000_000_000, sample_rate_hz=360.0, leads=["II", "V1"],
    )  # fmt: skip
    control_id, back = parse_waveform(build_waveform(chunk, Header(), 0).encode())
    assert control_id == "mon-1.7"
    assert (back.data, back.gain, back.leads, back.seq, back.bed_id) == (chunk.data, 200.0, ["II", "V1"], 7, "b1")
    ack = parse_ack(build_ack(control_id, "AE", Header(), 0, "bad | thing").encode())
    assert (ack.code, ack.control_id, ack.text) == ("AE", "mon-1.7", "bad   thing")
