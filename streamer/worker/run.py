"""Builds a worker from its settings and runs it in the foreground (Faust's worker owns the event loop)."""

from __future__ import annotations

import logging

import faust

from models.bundle import read_manifest
from models.runtime import open_runtime
from streamer.batcher import BatcherSettings
from streamer.metrics import WorkerMetrics
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.alarms import AlarmStage
from streamer.worker.app import create_app
from streamer.worker.config import WorkerConfig
from streamer.worker.core import Core

log = logging.getLogger("streamer.worker")


def build_app(kafka: KafkaSettings, topics: TopicSettings, config: WorkerConfig) -> tuple[faust.App, Core]:
    """Opens the bundle's runtime and wires the app (raises BundleError / ValueError on a bad bundle)."""
    manifest = read_manifest(config.bundle)
    if config.backend == "torch":
        import torch

        torch.set_num_threads(config.threads)  # oversubscribed intra-op threads starve the event loop
    runtime = open_runtime(config.bundle, config.backend, threads=config.threads if config.backend == "onnx" else None)
    metrics = WorkerMetrics()
    core = Core(
        runtime,
        AlarmStage.from_manifest(manifest),
        metrics,
        BatcherSettings(max_batch=config.max_batch, max_delay_s=config.max_delay_ms / 1000),
    )
    if config.metrics_port is not None:
        metrics.serve(config.metrics_port)
    return create_app(kafka, topics, config, core, metrics), core


def run_worker(kafka: KafkaSettings, topics: TopicSettings, config: WorkerConfig, loglevel: str = "info") -> None:
    """Serves until SIGINT/SIGTERM (Faust stops gracefully: in-flight batches finish, offsets commit)."""
    app, core = build_app(kafka, topics, config)
    log.info(
        "worker starting group=%s bundle=%s backend=%s dev_broker=%s",
        config.group,
        config.bundle,
        config.backend,
        kafka.dev_broker,
    )
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
