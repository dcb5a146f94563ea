"""A bounded stop: the worker exits within a stated time of the first SIGTERM/SIGINT, whatever hangs (and at once
when a model call hangs: `exit_now`).

Faust's graceful stop waits on Kafka: with the broker down, aiokafka's consumer thread alone waits 60 s
before giving up, past a Kubernetes grace period and past what an operator will wait. A daemon timer, armed
by the first signal, writes one CRITICAL line and ends the process with status 1 if the graceful stop has
not finished by then. Nothing is lost by it: offsets not committed mean the chunks are redelivered to the
worker that takes the beds over, and the alert dedup there suppresses what was already published.
"""

from __future__ import annotations

import logging
import os
import threading
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


def exit_now(why: str) -> NoReturn:
    """One CRITICAL line, the logs flushed, the process gone with status 1, whatever hangs in it (a graceful stop
    would wait for the hung part). What the worker had not acknowledged is redelivered to the next owner."""
    log.critical("%s", why)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(FORCED_EXIT_STATUS)
