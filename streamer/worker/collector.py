"""The worker's garbage collector: start-up objects frozen out of collection, full collections rare and timed.

A full collection walks every object the process tracks. A worker holds millions from start-up alone (torch,
ONNX Runtime, Faust and their modules), so each one took ~400 ms at 1,000 beds, three in a minute's replay: every
thread that runs Python (the event loop, the model thread's calls) waited the whole time, and the windows due
meanwhile made the p99 latency (docs/benchmarks.md, "Filtering a window's chunks at once; the garbage
collector"). What is built before the worker serves lives as long as the process: it is frozen out of collection
(`gc.freeze`), so collections walk the beds' state only; and a full collection runs after `FULL_EVERY`
collections of the middle generation instead of Python's 10 (the worker's cycles are short-lived: full
collections there found none). Every pause is observed in the worker's metrics, per generation, so an operator
sees the collector's share of the latency.
"""

from __future__ import annotations

import gc
import time

from streamer.metrics import WorkerMetrics

FULL_EVERY = 100  # middle-generation collections per full collection (Python's default: 10)


def tune_collector(metrics: WorkerMetrics) -> None:
    """Call once, when the worker is built and before it serves."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_EVERY)
    started: list[float] = [0.0]

    def observe(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            metrics.gc_pause_ms.labels(str(info["generation"])).observe((time.perf_counter() - started[0]) * 1e3)

    gc.callbacks.append(observe)
