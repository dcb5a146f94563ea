"""Builds a worker from its settings and runs it in the foreground (Faust's worker owns the event loop)."""

from __future__ import annotations

import logging
from typing import Any

import faust

from models.bundle import read_manifest
from models.runtime import open_runtime
from streamer import logfilter
from streamer.assembly import AssemblerSettings
from streamer.batcher import BatcherSettings
from streamer.metrics import WorkerMetrics
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.alarms import engine_from_manifest
from streamer.worker.app import create_app
from streamer.worker.collector import tune_collector
from streamer.worker.config import WorkerConfig
from streamer.worker.core import Core
from streamer.worker.deadline import StopDeadline

log = logging.getLogger("streamer.worker")


def build_app(kafka: KafkaSettings, topics: TopicSettings, config: WorkerConfig) -> tuple[faust.App, Core]:
    """Opens the bundle's runtime and wires the app (raises BundleError / ValueError on a bad bundle)."""
    manifest = read_manifest(config.bundle)
    if config.backend in ("torch", "cuda"):
        import torch

        torch.set_num_threads(config.threads)  # oversubscribed intra-op threads starve the event loop
    runtime = open_runtime(config.bundle, config.backend, threads=config.threads if config.backend == "onnx" else None)
    metrics = WorkerMetrics()
    core = Core(
        runtime,
        engine_from_manifest(manifest),
        metrics,
        BatcherSettings(
            max_batch=config.max_batch, max_delay_s=config.max_delay_ms / 1000, skip_behind=config.skip_behind
        ),
        lateness=config.lateness,
        assembler=AssemblerSettings(mains_hz=config.mains_hz),
    )
    if config.metrics_port is not None:
        metrics.serve(config.metrics_port, config.metrics_host)
    return create_app(kafka, topics, config, core, metrics), core


class _Worker(faust.Worker):
    """Faust's worker with rate-limited logs and a stop bounded by `StopDeadline` from the first signal."""

    def __init__(self, app: faust.App, deadline: StopDeadline, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.deadline = deadline

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        logfilter.install(logger)  # Faust has just replaced the root handlers that `enecg` set up

    def _on_sigterm(self) -> None:
        self.deadline.arm("SIGTERM")
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self.deadline.arm("SIGINT")
        super()._on_sigint()


def run_worker(kafka: KafkaSettings, topics: TopicSettings, config: WorkerConfig, loglevel: str = "info") -> None:
    """Serves until SIGINT/SIGTERM (Faust stops gracefully: in-flight batches finish, offsets commit), and
    exits within `config.stop_timeout_s` of the first signal even when the stop hangs on an unreachable broker."""
    app, core = build_app(kafka, topics, config)
    tune_collector(core.metrics)
    log.info(
        "worker starting group=%s bundle=%s backend=%s dev_broker=%s",
        config.group,
        config.bundle,
        config.backend,
        kafka.dev_broker,
    )
    deadline = StopDeadline(config.stop_timeout_s)
    worker = _Worker(app, deadline, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
