"""`enecg replay --hl7 HOST:PORT`: the replay plan sent as WCM-style ORU^R01 waveforms over MLLP, one at a
time, each waiting for its ACK (what a monitor gateway does). Same plan, pacing and summary as the Kafka
replay; an AE or AR is counted and reported, not retried (the point is to see what the receiver does)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable

from streamer.contract import WaveformChunk, decode_waveform
from streamer.hl7.messages import Header, build_waveform
from streamer.hl7.mllp import MllpLink
from streamer.replay.engine import ReplaySummary
from streamer.replay.plan import Event


async def send_plan_hl7(
    events: Iterable[Event], link: MllpLink, summary: ReplaySummary, *, stop: asyncio.Event | None = None
) -> Counter[str]:
    """Sends every planned chunk on its schedule; fills `summary` and returns the ACK codes received."""
    header = Header(sending_application="ENECG-REPLAY")
    codes: Counter[str] = Counter()
    started = time.monotonic()
    signal_s = 0.0
    try:
        for event in events:
            if stop is not None and stop.is_set():
                summary.interrupted = True
                break
            if summary.speed > 0 and (wait := started + event.due_s / summary.speed - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            signal_s = max(signal_s, event.end_s)
            summary.add(event)
            if event.value is None:
                continue
            chunk = decode_waveform(event.value)
            if not isinstance(chunk, WaveformChunk):
                raise ValueError(f"replay made an unusable chunk: {chunk.reason}")
            message = build_waveform(chunk, header, time.time_ns(), control_id=f"{chunk.device_id}.{chunk.seq}")
            codes[(await link.send(message)).code] += 1
    finally:
        await link.close()
    summary.finish(time.monotonic() - started, signal_s, Counter())
    return codes
