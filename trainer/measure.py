"""Wall time and peak resident memory of one piece of work, measured from outside the code it runs.

Peak memory is the resident set size (RSS) sampled every 20 ms from /proc/self/statm by a thread, minus the RSS
when the measurement started (after garbage collection and glibc's malloc_trim hand freed memory back to the
system): torch allocates outside Python's allocator, so tracemalloc would miss it, and ru_maxrss is a
whole-process high-water mark that cannot separate one training run from the next in the same process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
import time
from types import TracebackType

_PAGE = os.sysconf("SC_PAGE_SIZE")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def release_memory() -> None:
    """Collect garbage and return free heap pages to the OS, so the next RSS baseline is honest."""
    gc.collect()
    if hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class Usage:
    """`with Usage() as u: ...` then `u.wall_s`, `u.peak_rss_mb` (peak above the start) and `u.rss_mb_start`."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.wall_s = 0.0
        self._start_rss = self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, rss_bytes())

    def __enter__(self) -> Usage:
        release_memory()
        self._start_rss = self._peak = rss_bytes()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.wall_s = time.perf_counter() - self._t0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._peak = max(self._peak, rss_bytes())

    @property
    def peak_rss_mb(self) -> float:
        return (self._peak - self._start_rss) / 2**20

    @property
    def rss_mb_start(self) -> float:
        return self._start_rss / 2**20
