"""Prometheus metrics of one worker, on a registry of its own (so tests and tools can hold several).

Served over HTTP by `serve(port, host)` (prometheus_client's server, not Faust's web server: two workers on one host
then need only distinct metrics ports). Labels never carry patient or bed identifiers, so cardinality stays
bounded whatever the ward size.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_MS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_FETCH_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096)


class WorkerMetrics:
    """Beds active, windows, batch sizes, inference time, end-to-end lag, dead letters, alarms by condition, garbage
    collection pauses."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.beds_active = Gauge("enecg_beds_active", "beds with state on this worker", registry=r)
        self.chunks = Counter("enecg_chunks", "waveform chunks accepted", registry=r)
        self.windows = Counter("enecg_windows", "windows inferred (rate = windows/s)", registry=r)
        self.windows_skipped = Counter(
            "enecg_windows_skipped", "windows of beds a hop behind left out (the worker is overloaded)", registry=r
        )
        self.windows_failed = Counter(
            "enecg_windows_failed", "windows the model call failed on (judged as unusable signal)", registry=r
        )
        self.batch_size = Histogram(
            "enecg_batch_size", "windows per inference call", buckets=_BATCH_BUCKETS, registry=r
        )
        self.fetch_records = Histogram(
            "enecg_fetch_records", "input records per fetch (a fetch request at most once per fetch interval)",
            buckets=_FETCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.inference_ms = Histogram("enecg_inference_ms", "model time per batch", buckets=_MS_BUCKETS, registry=r)
        self.inference_cpu_s = Counter(
            "enecg_inference_cpu_seconds", "CPU time of the thread running the model calls", registry=r
        )
        self.lag_ms = Histogram(
            "enecg_end_to_end_lag_ms",
            "wall time from the arrival of the chunk that completed a window to the broker's ack of its outputs",
            buckets=_MS_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter("enecg_dead_letters", "messages sent to the dead-letter topic", registry=r)
        self.alarms = Counter("enecg_alarms", "alert records published", ["condition", "priority", "state"], registry=r)
        self.suppressed = Counter(
            "enecg_alerts_suppressed", "alert records already published before a restart or rebalance", registry=r
        )
        self.rebuilt_chunks = Counter("enecg_rebuild_chunks", "chunks replayed to refill buffers", registry=r)
        self.gc_pause_ms = Histogram(
            "enecg_gc_pause_ms",
            "garbage-collection pauses, per generation (2: full); every thread running Python waits",
            ["generation"],
            buckets=_MS_BUCKETS,
            registry=r,
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Starts the /metrics HTTP endpoint in a daemon thread, on loopback unless told otherwise."""
        start_http_server(port, addr=host, registry=self.registry)
