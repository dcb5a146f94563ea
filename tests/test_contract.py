"""Topic contract v1: every bad-input class becomes a dead letter that names the problem; good chunks decode."""

from __future__ import annotations

import base64
import hashlib
import json

import numpy as np
import pytest

from streamer.contract import (
    MAX_ABS_MV,
    MAX_CHUNK_S,
    MAX_DEAD_LETTER_ORIGINAL,
    MAX_MESSAGE_BYTES,
    Alert,
    AlertAction,
    DeadLetter,
    Priority,
    Vitals,
    WaveformChunk,
    decode_record,
    decode_waveform,
    encode,
    encode_waveform_binary,
    make_alert_id,
)

GOOD = {
    "schema_version": 1,
    "bed_id": "bed-001",
    "device_id": "mon-7",
    "seq": 3,
    "start_time_ns": 1_700_000_000_000_000_000,
    "sample_rate_hz": 360.0,
    "leads": ["II", "V1"],
    "samples": [[0.1, 0.2, 0.3], [-0.1, 0.0, 0.5]],
}


def message(**changes: object) -> bytes:
    fields = {**GOOD, **changes}
    return json.dumps({k: v for k, v in fields.items() if v is not ...}).encode()


def int16_message(data: object, **changes: object) -> bytes:
    return message(**{"samples": ..., "encoding": "int16", "gain": 200.0, "data": data, **changes})


BAD = [
    ("unparseable bytes", b"\xff\xfe garbage", "not JSON"),
    ("truncated JSON", message()[:40], "not JSON"),
    ("not an object", b"[1, 2]", "expected a JSON object"),
    ("empty message", b"", "empty message"),
    ("oversized", b" " * (MAX_MESSAGE_BYTES + 1), "exceeds"),
    ("unknown schema version", message(schema_version=2), "unknown schema_version 2"),
    ("no schema version", message(schema_version=...), "unknown schema_version None"),
    ("wrong type", message(seq="three"), "seq"),
    ("wrong type of samples", message(samples="lots"), "samples"),
    ("lead count != arrays", message(leads=["I", "II", "III"]), "3 lead names but 2 sample arrays"),
    ("unequal lengths", message(samples=[[0.1, 0.2], [0.3]]), "unequal lengths"),
    ("NaN", message(samples=[[0.1, float("nan")], [0.1, 0.2]]), "NaN or infinity"),
    ("infinity", message(samples=[[0.1, float("inf")], [0.1, 0.2]]), "NaN or infinity"),
    ("beyond any ECG (float)", message(samples=[[0.1, 1e300], [0.1, 0.2]]), "samples reach 1e+300 mV"),
    ("beyond any ECG (units)", message(samples=[[0.1, 11.0], [0.1, 0.2]], units="V"), "samples reach 1.1e+04 mV"),
    (
        "beyond any ECG (gain)",
        int16_message(base64.b64encode(b"\x01\x00\x00\x00").decode(), gain=1e-300),
        "samples reach 1e+300 mV",
    ),  # fmt: skip
    ("rate too low", message(sample_rate_hz=49.9), "sample_rate_hz"),
    ("rate too high", message(sample_rate_hz=2000.5), "sample_rate_hz"),
    ("empty chunk", message(samples=[[], []]), "empty"),
    ("empty int16 chunk", int16_message(""), "empty"),
    ("bad base64", int16_message("@@@not base64@@@"), "bad base64"),
    ("odd int16 bytes", int16_message(base64.b64encode(b"\x01\x02\x03").decode()), "do not split"),
    ("missing field", message(bed_id=...), "bed_id"),
    ("bad bed id", message(bed_id="bed 1; drop"), "bed_id"),
    ("negative seq", message(seq=-1), "seq"),
    ("unknown field", message(extra=1), "extra"),
    ("repeated leads", message(leads=["II", "II"]), "repeat"),
    ("binary envelope truncated", b"ECG1\x05", "truncated"),
    ("binary header past end", b"ECG1" + (999).to_bytes(4, "little") + b"{}", "runs past"),
    ("binary with float header", b"ECG1" + (len(message())).to_bytes(4, "little") + message(), "int16 header"),
]


@pytest.mark.parametrize(("case", "raw", "reason"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_input_becomes_a_dead_letter_naming_the_problem(case: str, raw: bytes, reason: str) -> None:
    letter = decode_waveform(raw, key=b"bed-001", topic="ecg.waveform.v1", partition=2, offset=41)
    assert isinstance(letter, DeadLetter), case
    assert reason in letter.reason, letter.reason
    assert "\n" not in letter.reason
    assert (letter.original, letter.original_key, letter.source_topic, letter.partition, letter.offset) == (
        raw[:MAX_DEAD_LETTER_ORIGINAL],
        b"bed-001",
        "ecg.waveform.v1",
        2,
        41,
    )
    assert (letter.original_size, letter.original_sha256) == (len(raw), hashlib.sha256(raw).hexdigest())
    assert letter.truncated == (len(raw) > MAX_DEAD_LETTER_ORIGINAL)
    assert DeadLetter.model_validate_json(encode(letter)) == letter  # a dead letter itself round-trips


@pytest.mark.parametrize("size", [MAX_MESSAGE_BYTES - 100, MAX_MESSAGE_BYTES + 1, 8 * MAX_MESSAGE_BYTES])
def test_a_dead_letter_always_fits_the_topic(size: int) -> None:
    """A refused message just under the contract's limit (or far over it), with a huge key, still makes a dead
    letter the producer can send (Faust's default request limit is 1,000,000 bytes; base64 adds a third)."""
    raw = json.dumps({"schema_version": 1, "bed_id": "bed-9", "samples": [[0.123456] * (size // 10)]}).encode()
    letter = decode_waveform(raw[:size], key=b"k" * 100_000, topic="t", partition=0, offset=1)
    assert isinstance(letter, DeadLetter)
    assert len(encode(letter)) < 600_000
    assert letter.original_size == len(raw[:size])


def test_a_dead_letter_names_the_bed_only_when_key_and_header_agree() -> None:
    nan_chunk = message(bed_id="icu-07", samples=[[0.1, float("nan")], [0.1, 0.2]])
    named = decode_waveform(nan_chunk, key=b"icu-07")
    other_key = decode_waveform(nan_chunk, key=b"icu-08")
    junk = decode_waveform(b"not json", key=b"icu-07")
    assert isinstance(named, DeadLetter) and named.bed_id == "icu-07"
    assert isinstance(other_key, DeadLetter) and other_key.bed_id is None
    assert isinstance(junk, DeadLetter) and junk.bed_id is None


def test_a_chunk_longer_than_the_policy_allows_is_refused() -> None:
    """One message must never carry hours of one bed (it would stall every other bed while it is windowed)."""
    ok = int16_message(base64.b64encode(b"\x00\x00" * 2 * int(360 * MAX_CHUNK_S)).decode())
    too_long = int16_message(base64.b64encode(b"\x00\x00" * 2 * (int(360 * MAX_CHUNK_S) + 1)).decode())
    assert isinstance(decode_waveform(ok), WaveformChunk)
    letter = decode_waveform(too_long)
    assert isinstance(letter, DeadLetter) and f"at most {MAX_CHUNK_S:g} s" in letter.reason


def test_pacer_pulses_and_electrode_offsets_are_taken_values_beyond_any_ecg_are_not() -> None:
    """Monitors take pacer pulses up to ±700 mV (IEC 60601-2-27) and an unfiltered lead may sit hundreds of mV off
    zero; the bound (MAX_ABS_MV) sits far beyond both, far below where the model's float32 overflows."""
    pacer = message(samples=[[0.1, -700.0, 0.3], [0.0, 0.1, 0.2]])
    edge = message(samples=[[MAX_ABS_MV, 0.0, 0.0], [0.0, 0.0, 0.0]])
    in_uv = message(samples=[[MAX_ABS_MV * 1000, 0.0, 0.0], [0.0, 0.0, 0.0]], units="uV")
    counts = int16_message(base64.b64encode(np.array([32767, -32768, 0, 0], "<i2").tobytes()).decode(), gain=3.3)
    assert all(isinstance(decode_waveform(raw), WaveformChunk) for raw in (pacer, edge, in_uv, counts))
    beyond = message(samples=[[MAX_ABS_MV * 1.001, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert isinstance(decode_waveform(beyond), DeadLetter)


def test_good_chunks_decode_in_every_encoding() -> None:
    chunk = decode_waveform(message())
    assert isinstance(chunk, WaveformChunk) and chunk.n_samples == 3
    signal = np.array([[0.1, -0.2, 1.5], [0.0, 2.0, -3.25]])
    for encoding in ("float", "int16"):
        built = WaveformChunk.from_millivolts(signal, encoding=encoding, gain=200.0, **_ids())
        assert decode_waveform(encode(built)) == built
        assert np.allclose(built.millivolts(), signal, atol=1 / 400)
    packed = WaveformChunk.from_millivolts(signal, encoding="int16", gain=200.0, **_ids())
    assert decode_waveform(encode_waveform_binary(packed)) == packed
    with pytest.raises(ValueError, match="int16 chunks only"):
        encode_waveform_binary(decode_waveform(message()))


def test_int16_is_lead_major_with_baseline() -> None:
    counts = np.array([[1, 2, 3], [-4, -5, -6]], dtype="<i2")
    chunk = WaveformChunk(data=counts.tobytes(), gain=10.0, baseline=1, encoding="int16", **_ids())
    assert np.array_equal(chunk.millivolts(), (counts - 1) / 10.0)


def test_other_records_round_trip_and_reject_garbage() -> None:
    alert = Alert(
        alert_id=make_alert_id("bed-1", "asystole", 5),
        bed_id="bed-1",
        condition="asystole",
        priority=Priority.high,
        state="raised",
        onset_time_ns=5,
        event_time_ns=6,
    )
    assert decode_record(encode(alert), Alert) == alert
    assert make_alert_id("bed-1", "asystole", 5) == alert.alert_id != make_alert_id("bed-1", "asystole", 6)
    vitals = Vitals(bed_id="bed-1", window_start_ns=0, window_end_ns=10, heart_rate_bpm=72.0)
    assert decode_record(encode(vitals), Vitals) == vitals
    action = AlertAction(bed_id="bed-1", action="acknowledge", user="nurse-4")
    assert decode_record(encode(action), AlertAction) == action
    with pytest.raises(ValueError, match="not a valid Alert"):
        decode_record(b"{}", Alert)


def _ids() -> dict:
    return {"bed_id": "bed-1", "device_id": "d", "seq": 0, "start_time_ns": 0, "sample_rate_hz": 250.0,
            "leads": ["I", "II"]}  # fmt: skip
