"""Forced exits, so that nothing hung holds beds unwatched: a bounded stop (the worker exits within a stated time
of the first SIGTERM/SIGINT, whatever hangs), a blocked event loop (`LoopWatch`) and a hung model call (the
worker calls `exit_now`).

Faust's graceful stop waits on Kafka: with the broker down, aiokafka's consumer thread alone waits 60 s
before giving up, past a Kubernetes grace period and past what an operator will wait. A daemon timer, armed
by the first signal, writes one CRITICAL line and ends the process with status 1 if the graceful stop has
not finished by then. Nothing is lost by it: offsets not committed mean the chunks are redelivered to the
worker that takes the beds over, and the alert dedup there suppresses what was already published.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import traceback
from typing import NoReturn

log = logging.getLogger("streamer.worker")

FORCED_EXIT_STATUS = 1


class StopDeadline:
    """Armed once, by the first stop request; forces the exit `timeout_s` later unless the process is gone."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._timer: threading.Timer | None = None

    def arm(self, reason: str) -> None:
        if self._timer is not None:
            return
        log.info("%s: stopping gracefully, forced exit in %.0f s if the stop hangs", reason, self.timeout_s)
        self._timer = threading.Timer(self.timeout_s, self._force_exit, args=(reason,))
        self._timer.daemon = True
        self._timer.start()

    def _force_exit(self, reason: str) -> None:
        exit_now(
            f"worker did not stop within {self.timeout_s:.0f} s of {reason} (Kafka unreachable?): exiting now; "
            "uncommitted chunks will be redelivered to the worker that takes these beds over"
        )


class LoopWatch:
    """Ends the process when its event loop has not run for `timeout_s`.

    Everything a worker does for its beds runs on the event loop; while it is blocked (a bug, a pathological
    input) nothing is read, analysed or alarmed, yet Faust's consumer thread keeps heartbeating, so the group
    leaves the beds with this worker until the poll interval runs out (minutes). `run` beats from the loop; a
    daemon thread that finds the last beat older than `timeout_s` logs where the loop is stuck and exits, and the
    group gives the beds to another worker (or the supervisor restarts this one)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.beat_s = min(1.0, timeout_s / 4)
        self._last_beat = time.monotonic()

    async def run(self) -> None:
        """Beats until cancelled; the watching thread lives as long as this coroutine."""
        loop_thread = threading.get_ident()
        stopped = threading.Event()
        self._last_beat = time.monotonic()
        threading.Thread(target=self._watch, args=(loop_thread, stopped), name="loop-watch", daemon=True).start()
        try:
            while True:
                self._last_beat = time.monotonic()
                await asyncio.sleep(self.beat_s)
        finally:
            stopped.set()

    def _watch(self, loop_thread: int, stopped: threading.Event) -> None:
        while not stopped.wait(self.beat_s):
            blocked_s = time.monotonic() - self._last_beat
            if blocked_s > self.timeout_s and not stopped.is_set():
                frame = sys._current_frames().get(loop_thread)
                where = "".join(traceback.format_stack(frame)[-8:]) if frame is not None else "(unknown)\n"
                exit_now(
                    f"the event loop has not run for {blocked_s:.1f} s (loop timeout {self.timeout_s:g} s): no bed of "
                    f"this worker is being watched; exiting so that the group moves them. The loop is stuck at:\n"
                    f"{where.rstrip()}"
                )


def exit_now(why: str) -> NoReturn:
    """One CRITICAL line, the logs flushed, the process gone with status 1, whatever hangs in it (a graceful stop
    would wait for the hung part). What the worker had not acknowledged is redelivered to the next owner."""
    log.critical("%s", why)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(FORCED_EXIT_STATUS)
