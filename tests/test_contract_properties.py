"""Property tests of the waveform decoder: it never raises, and every valid chunk round-trips."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.contract import (
    BINARY_MAGIC,
    MAX_ABS_MV,
    DeadLetter,
    WaveformChunk,
    decode_waveform,
    encode,
    encode_waveform_binary,
)

LEAD_NAMES = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6", "MLII"]
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
field_values = {
    "schema_version": st.sampled_from([1, 1, 1, 0, 2, "1", None]),
    "bed_id": st.text(max_size=70) | st.just("bed-1"),
    "device_id": st.text(max_size=10) | st.integers(),
    "seq": st.integers(-3, 2**70) | st.text(max_size=3),
    "start_time_ns": st.integers(-5, 2**70) | st.floats(),
    "sample_rate_hz": st.floats() | st.integers(-10, 5000),
    "leads": st.lists(st.text(max_size=18), max_size=18) | json_values,
    "encoding": st.sampled_from(["float", "int16", "int8", None]),
    "samples": st.lists(st.lists(st.floats(), max_size=6), max_size=4) | json_values,
    "data": st.text(max_size=20) | st.binary(max_size=20).map(lambda b: b.hex()),
    "gain": st.floats() | st.integers(-2, 3),
    "units": st.sampled_from(["mV", "uV", "V", "furlongs"]),
}


@st.composite
def random_messages(draw: st.DrawFn) -> bytes:
    fields = {name: draw(values) for name, values in field_values.items() if draw(st.booleans())}
    fields.update(draw(st.dictionaries(st.text(max_size=5), json_values, max_size=2)))
    raw = json.dumps(fields).encode()
    if draw(st.booleans()):  # the same header in a binary envelope, maybe with a lying length
        length = draw(st.integers(0, len(raw) + 10))
        raw = BINARY_MAGIC + length.to_bytes(4, "little") + raw + draw(st.binary(max_size=16))
    return raw


@FAST
@given(st.binary(max_size=512) | st.binary(max_size=64).map(lambda b: BINARY_MAGIC + b))
def test_random_bytes_never_raise(raw: bytes) -> None:
    result = decode_waveform(raw, key=b"k", topic="t", partition=0, offset=1)
    assert isinstance(result, WaveformChunk | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.reason and result.original == raw


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_messages())
def test_random_field_values_never_raise(raw: bytes) -> None:
    result = decode_waveform(raw)
    assert isinstance(result, WaveformChunk | DeadLetter)
    if isinstance(result, WaveformChunk):  # whatever got through is a usable chunk
        assert np.isfinite(result.millivolts()).all() and result.n_samples > 0


@st.composite
def valid_chunks(draw: st.DrawFn) -> WaveformChunk:
    n_leads = draw(st.integers(1, 12))
    n = draw(st.integers(1, 64))
    leads = draw(st.lists(st.sampled_from(LEAD_NAMES), min_size=n_leads, max_size=n_leads, unique=True))
    fields = dict(
        bed_id=draw(st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)),
        unit=draw(st.none() | st.text(max_size=20)),
        device_id=draw(st.text(min_size=1, max_size=40)),
        patient_id=draw(st.none() | st.text(max_size=30)),
        seq=draw(st.integers(0, 2**62)),
        start_time_ns=draw(st.integers(0, 2**63)),
        sample_rate_hz=draw(st.floats(50, 2000)),
        leads=leads,
    )
    if draw(st.booleans()):
        values = st.floats(-MAX_ABS_MV, MAX_ABS_MV, allow_nan=False, allow_infinity=False)
        samples = draw(st.lists(st.lists(values, min_size=n, max_size=n), min_size=n_leads, max_size=n_leads))
        return WaveformChunk(samples=samples, encoding="float", **fields)
    counts = np.asarray(draw(st.lists(st.integers(-32768, 32767), min_size=n * n_leads, max_size=n * n_leads)))
    gain = draw(st.floats((32768 + 2000) / MAX_ABS_MV, 1e6))  # any count and baseline stays within MAX_ABS_MV
    baseline = draw(st.integers(-2000, 2000))
    return WaveformChunk(data=counts.astype("<i2").tobytes(), gain=gain, baseline=baseline, encoding="int16", **fields)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_chunks())
def test_every_valid_chunk_round_trips(chunk: WaveformChunk) -> None:
    assert decode_waveform(encode(chunk)) == chunk
    if chunk.encoding == "int16":
        assert decode_waveform(encode_waveform_binary(chunk)) == chunk
        assert np.array_equal(decode_waveform(encode_waveform_binary(chunk)).millivolts(), chunk.millivolts())
    else:
        assert decode_waveform(encode(chunk)).samples == chunk.samples  # JSON floats are exact
