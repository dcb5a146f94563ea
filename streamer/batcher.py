"""Cross-bed micro-batching, like Triton's dynamic batcher: flush at ``max_batch`` windows or when the oldest
waiting window has waited ``max_delay_s``. Pure: the caller passes the clock.

Each bed's windows wait in their own queue and a batch takes one window per bed in turn, so no bed holds the
others back by more than one batch: not a bed that sends nothing (or late), and not one that sends a lot at
once, such as a monitor that reconnects with half an hour of buffered signal (one shared FIFO made every other
bed wait for that backlog's whole analysis). A bed's own windows keep their order.

The default delay is 0: whatever waits is due, and the worker takes it whenever its model is free, so batches
grow with load by themselves (the windows that arrive while the model runs make the next batch). A delay only
buys bigger batches at low load, at the price of latency (a GPU with a high per-call cost may want a little).

Behind, every other window (`skip_behind`, the worker's choice): a window that has waited a whole hop while
the next window of its bed waits too is skipped and the next one taken in its place, never two in a row, so
an overloaded worker (up to twice what its model serves) keeps every bed's analysis current at every other
window instead of falling further behind on all of them. The windows analysed still cover the signal without
a hole (they must overlap by more than a hop: see `Core`). A burst (a reconnect's backlog, a restart's re-read)
is analysed whole until it has waited a hop, then every other window."""

from __future__ import annotations

from collections import deque

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from streamer.windows import Window


class BatcherSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_batch: int = Field(32, ge=1, description="windows per model call at most")
    max_delay_s: float = Field(0.0, ge=0, description="longest a window waits for others before a flush (0: none)")
    skip_behind: bool = Field(
        False, description="skip a bed's window that waited a hop while its next one waits too (never two in a row)"
    )


class MicroBatcher:
    def __init__(self, settings: BatcherSettings | None = None, skip_after_ns: int | None = None) -> None:
        """`skip_after_ns`: how long a window waits before it may be skipped (with `skip_behind`; None: never)."""
        self.settings = settings or BatcherSettings()
        self.skip_after_ns = skip_after_ns if self.settings.skip_behind else None
        self.skipped: dict[int, Window] = {}  # id(window taken) -> the window skipped in its place, until taken
        # bed -> its (time added, window), oldest first; dict order is the beds' turn order
        self._beds: dict[str, deque[tuple[int, Window]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def full(self) -> bool:
        """A whole batch waits."""
        return self._count >= self.settings.max_batch

    def add(self, window: Window, now_ns: int) -> None:
        self._beds.setdefault(window.bed_id, deque()).append((now_ns, window))
        self._count += 1

    def poll(self, now_ns: int) -> list[Window] | None:
        """A batch when one is due (full, or its oldest window waited max_delay), else None."""
        if not self._count:
            return None
        if self.full or now_ns >= self.deadline_ns():
            return self._take(now_ns)
        return None

    def deadline_ns(self) -> int | None:
        """When the oldest waiting window is due: the worker sleeps until then (None when empty)."""
        if not self._count:
            return None
        oldest = min(waiting[0][0] for waiting in self._beds.values())
        return oldest + round(self.settings.max_delay_s * 1e9)

    def flush(self) -> list[Window] | None:
        """Whatever waits (a batch at most), now (shutdown, rebalance)."""
        return self._take() if self._count else None

    def _take(self, now_ns: int | None = None) -> list[Window]:
        """One window of each bed in turn (or its successor, when it is skipped); a bed served goes to the back of
        the turn order."""
        batch: list[Window] = []
        while self._beds and len(batch) < self.settings.max_batch:
            bed = next(iter(self._beds))
            waiting = self._beds.pop(bed)
            added_ns, window = waiting.popleft()
            if self._skips(window, added_ns, waiting, now_ns):
                left_out, window = window, waiting.popleft()[1]
                self.skipped[id(window)] = left_out
                self._count -= 1
            batch.append(window)
            if waiting:
                self._beds[bed] = waiting
        self._count -= len(batch)
        return batch

    def _skips(self, window: Window, added_ns: int, waiting: deque[tuple[int, Window]], now_ns: int | None) -> bool:
        """It waited a hop, and its successor in the same segment waits (taken now, so never two in a row)."""
        return (
            self.skip_after_ns is not None
            and now_ns is not None
            and now_ns - added_ns >= self.skip_after_ns
            and bool(waiting)
            and waiting[0][1].segment_start_ns == window.segment_start_ns
        )


def stack(batch: list[Window]) -> np.ndarray:
    """The model input of a batch: (b, l, s) float32."""
    return np.stack([w.signal for w in batch]).astype(np.float32, copy=False)
