"""Cross-bed micro-batching, like Triton's dynamic batcher: flush at ``max_batch`` windows or when the oldest
waiting window has waited ``max_delay_s``. Pure: the caller passes the clock.

Each bed's windows wait in their own queue and a batch takes one window per bed in turn, so no bed holds the
others back by more than one batch: not a bed that sends nothing (or late), and not one that sends a lot at
once, such as a monitor that reconnects with half an hour of buffered signal (one shared FIFO made every other
bed wait for that backlog's whole analysis). A bed's own windows keep their order.

The default delay is 0: whatever waits is due, and the worker takes it whenever its model is free, so batches
grow with load by themselves (the windows that arrive while the model runs make the next batch). A delay only
buys bigger batches at low load, at the price of latency (a GPU with a high per-call cost may want a little)."""

from __future__ import annotations

from collections import deque

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from streamer.windows import Window


class BatcherSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_batch: int = Field(32, ge=1, description="windows per model call at most")
    max_delay_s: float = Field(0.0, ge=0, description="longest a window waits for others before a flush (0: none)")


class MicroBatcher:
    def __init__(self, settings: BatcherSettings | None = None) -> None:
        self.settings = settings or BatcherSettings()
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
            return self._take()
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

    def _take(self) -> list[Window]:
        """One window of each bed in turn; a bed served goes to the back of the turn order."""
        batch: list[Window] = []
        while self._beds and len(batch) < self.settings.max_batch:
            bed = next(iter(self._beds))
            waiting = self._beds.pop(bed)
            batch.append(waiting.popleft()[1])
            if waiting:
                self._beds[bed] = waiting
        self._count -= len(batch)
        return batch


def stack(batch: list[Window]) -> np.ndarray:
    """The model input of a batch: (b, l, s) float32."""
    return np.stack([w.signal for w in batch]).astype(np.float32, copy=False)
