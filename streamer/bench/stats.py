"""Measurement primitives for the bench: percentiles, this process's CPU/wall clocks, another process's usage.

"Per core" figures use CPU seconds (time.process_time, or utime+stime from /proc for another process): on a
machine shared with other jobs, wall time counts the time we were descheduled; CPU time does not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel


class Percentiles(BaseModel):
    """Summary of a sample (milliseconds in the bench). Linear interpolation between order statistics."""

    n: int
    p50: float
    p90: float
    p99: float
    max: float


def percentiles(values: Sequence[float] | np.ndarray) -> Percentiles | None:
    """p50/p90/p99/max of `values` (None for an empty sample: no figure rather than a made-up one)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None
    p50, p90, p99 = np.percentile(x, [50, 90, 99])  # numpy's default 'linear' method
    return Percentiles(n=int(x.size), p50=float(p50), p90=float(p90), p99=float(p99), max=float(x.max()))


class Clock:
    """Accumulates this process's CPU and wall seconds over the sections timed with `with clock:`."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.wall_s = 0.0
        self._cpu0 = self._wall0 = 0.0

    def __enter__(self) -> Clock:
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_s += time.process_time() - self._cpu0
        self.wall_s += time.perf_counter() - self._wall0


class ProcessUsage(BaseModel):
    """One reading of a process's CPU seconds (user + system) and resident memory, from /proc."""

    cpu_s: float
    rss_mb: float
    at_s: float  # time.monotonic() of the reading


def process_usage(pid: int, proc: Path = Path("/proc")) -> ProcessUsage:
    """utime+stime from /proc/<pid>/stat (fields 14 and 15, in clock ticks) and VmRSS from /proc/<pid>/status."""
    stat = (proc / str(pid) / "stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces; field 3 is first
    ticks = int(fields[14 - 3]) + int(fields[15 - 3])
    rss_kb = 0
    for line in (proc / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
            break
    return ProcessUsage(cpu_s=ticks / os.sysconf("SC_CLK_TCK"), rss_mb=rss_kb / 1024, at_s=time.monotonic())
