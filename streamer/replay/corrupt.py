"""Malformed waveform messages of known kinds, for testing that consumers dead-letter them and carry on.

Each maker turns a valid chunk into bytes that break one rule of the contract (or of JSON itself), so a test
can check every kind of bad input reaches the dead-letter path with a reason.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from streamer.contract import BINARY_MAGIC, WaveformChunk, encode


def _float_fields(chunk: WaveformChunk) -> dict:
    """The chunk as a float-encoded JSON object (whatever its own encoding)."""
    fields = json.loads(encode(chunk))
    fields.update(encoding="float", samples=chunk.millivolts().tolist(), units="mV")
    for name in ("data", "gain", "baseline"):
        fields.pop(name, None)
    return fields


def _dumps(fields: object) -> bytes:
    return json.dumps(fields).encode()  # allow_nan: NaN/Infinity written as JSON5-style literals on purpose


def _with(**changes: object) -> Callable[[WaveformChunk, random.Random], bytes]:
    def make(chunk: WaveformChunk, rng: random.Random) -> bytes:
        return _dumps({**_float_fields(chunk), **changes})

    return make


def _not_json(chunk: WaveformChunk, rng: random.Random) -> bytes:
    return b"\xff" + rng.randbytes(31)  # 0xff is never valid UTF-8, so never JSON


def _truncated(chunk: WaveformChunk, rng: random.Random) -> bytes:
    raw = encode(chunk)
    return raw[: rng.randrange(1, len(raw) - 1)]


def _truncated_binary(chunk: WaveformChunk, rng: random.Random) -> bytes:
    header = json.dumps({"schema_version": 1, "encoding": "int16"}).encode()
    return BINARY_MAGIC + (len(header) + 500).to_bytes(4, "little") + header


def _nan(chunk: WaveformChunk, rng: random.Random) -> bytes:
    fields = _float_fields(chunk)
    fields["samples"][0][rng.randrange(len(fields["samples"][0]))] = rng.choice([float("nan"), float("inf")])
    return _dumps(fields)


def _lead_count(chunk: WaveformChunk, rng: random.Random) -> bytes:
    fields = _float_fields(chunk)
    fields["leads"] = [*fields["leads"], "X9"]
    return _dumps(fields)


def _unequal_lengths(chunk: WaveformChunk, rng: random.Random) -> bytes:
    fields = _float_fields(chunk)
    fields["samples"][0] = fields["samples"][0][:-1] or [0.0, 0.0]
    if len(fields["samples"]) == 1:
        fields["leads"] = [*fields["leads"], "X9"]
        fields["samples"].append([0.0] * (len(fields["samples"][0]) + 1))
    return _dumps(fields)


def _bad_base64(chunk: WaveformChunk, rng: random.Random) -> bytes:
    fields = _float_fields(chunk)
    del fields["samples"]
    fields.update(encoding="int16", gain=200.0, data="@@ not base64 @@")
    return _dumps(fields)


def _empty_chunk(chunk: WaveformChunk, rng: random.Random) -> bytes:
    fields = _float_fields(chunk)
    fields["samples"] = [[] for _ in fields["leads"]]
    return _dumps(fields)


#: Kind name -> maker. Each produces a message `streamer.contract.decode_waveform` must dead-letter.
CORRUPTIONS: dict[str, Callable[[WaveformChunk, random.Random], bytes]] = {
    "not_json": _not_json,
    "truncated": _truncated,
    "truncated_binary": _truncated_binary,
    "not_an_object": lambda chunk, rng: b"[1, 2, 3]",
    "empty_message": lambda chunk, rng: b"",
    "nan": _nan,
    "lead_count": _lead_count,
    "unequal_lengths": _unequal_lengths,
    "empty_chunk": _empty_chunk,
    "bad_base64": _bad_base64,
    "unknown_schema_version": _with(schema_version=99),
    "wrong_type": _with(seq="seven"),
    "rate_out_of_range": _with(sample_rate_hz=10.0),
    "missing_field": lambda chunk, rng: _dumps({k: v for k, v in _float_fields(chunk).items() if k != "bed_id"}),
}


def corrupt(chunk: WaveformChunk, rng: random.Random, kind: str | None = None) -> tuple[str, bytes]:
    """A malformed message made from `chunk`: of `kind`, or of a kind drawn from `rng`."""
    kind = kind or rng.choice(sorted(CORRUPTIONS))
    return kind, CORRUPTIONS[kind](chunk, rng)
