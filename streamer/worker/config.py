"""The worker's own settings (the Kafka and topic settings live in `streamer.settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.runtime import Backend
from streamer.assembly import AssemblerSettings
from streamer.batcher import BatcherSettings
from streamer.worker.lateness import LatenessSettings

BATCHING = BatcherSettings()  # the one place the batching defaults are written
YIELD_EVERY = 64  # input messages handled between yields to the event loop (the flush loop runs in it)


class WorkerConfig(BaseModel):
    """How one worker runs: model, consumer group, batching, delivery and metrics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bundle: Path = Field(description="model bundle directory (manifest + safetensors)")
    backend: Backend = Field(
        "torch", description="model runtime: torch (eager), onnx (ONNX Runtime), tensorrt, cuda (fp16 CUDA graphs)"
    )
    group: str = Field("enecg-worker", min_length=1, description="Kafka consumer group of all workers")
    waveform_topics: tuple[str, ...] = Field((), description="input topics; empty = TopicSettings.waveform")
    waveform_pattern: str | None = Field(None, description="regex of input topics, instead of a list")
    max_batch: int = Field(BATCHING.max_batch, ge=1, le=1024, description="windows per inference call at most")
    max_delay_ms: float = Field(
        BATCHING.max_delay_s * 1000, ge=0, le=10_000, description="oldest window waits at most this long"
    )
    fetch_interval_ms: float = Field(
        100.0,
        ge=0,
        le=1000,
        description="a fetch request for input goes out at most once per interval: fewer, larger fetches cost "
        "the worker and the broker less per record; a record may wait up to one interval more",
    )
    skip_behind: bool = Field(
        True, description="a bed a hop behind has every other window analysed (overload: stay current, not late)"
    )
    threads: int = Field(
        1, ge=1, le=64, description="inference threads; 1 leaves the other cores to Faust, the broker and peers"
    )
    metrics_port: int | None = Field(None, ge=0, lt=65536, description="Prometheus /metrics port; None = off")
    metrics_host: str = Field(
        "127.0.0.1", min_length=1, description="address /metrics listens on; 0.0.0.0 for a scraper on another host"
    )
    model_timeout_s: float = Field(
        60.0, gt=0, description="a model call not back this long after it was submitted ends the worker (hung)"
    )
    loop_timeout_s: float = Field(
        30.0, gt=0, description="an event loop blocked this long ends the worker (nothing is read or analysed)"
    )
    stop_timeout_s: float = Field(
        15.0, gt=0, le=300, description="SIGTERM/SIGINT to exit at most, even with Kafka unreachable"
    )
    rebuild_margin_s: float = Field(
        30.0, ge=0, description="signal replayed on assignment beyond one window (buffers, beat timeline)"
    )
    alerts_lookback: int = Field(
        5000, ge=0, description="alert records read back per partition on assignment (what was published)"
    )
    offset_reset: Literal["earliest", "latest"] | None = Field(
        None, description="where a new group starts; None = earliest on the dev broker, latest elsewhere"
    )
    lateness: LatenessSettings = Field(
        default_factory=LatenessSettings, description="when a bed analysed late raises analysis_delayed"
    )
    mains_hz: tuple[float, ...] = Field(
        AssemblerSettings().mains_hz, description="power-line frequencies notched out before the model; () none"
    )
    data_dir: Path | None = Field(None, description="Faust's data directory; None = a fresh temporary one")

    @model_validator(mode="after")
    def _one_input(self) -> WorkerConfig:
        if self.waveform_topics and self.waveform_pattern:
            raise ValueError("give waveform topics or a topic pattern, not both")
        return self
