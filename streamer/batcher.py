"""Cross-bed micro-batching, like Triton's dynamic batcher: flush at ``max_batch`` windows or when the oldest
waiting window has waited ``max_delay_s``. Windows of all beds wait in one FIFO, so a bed that sends nothing
(or late) never holds the others back. Pure: the caller passes the clock.

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
        self._waiting: deque[tuple[int, Window]] = deque()  # (time added, window), oldest first

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, window: Window, now_ns: int) -> list[Window] | None:
        """Queues a window; returns a full batch at once when this one filled it."""
        self._waiting.append((now_ns, window))
        if len(self._waiting) >= self.settings.max_batch:
            return self._take()
        return None

    def poll(self, now_ns: int) -> list[Window] | None:
        """A batch when one is due (full, or its oldest window waited max_delay), else None."""
        if not self._waiting:
            return None
        if len(self._waiting) >= self.settings.max_batch or now_ns >= self.deadline_ns():
            return self._take()
        return None

    def deadline_ns(self) -> int | None:
        """When the oldest waiting window is due: the worker sleeps until then (None when empty)."""
        if not self._waiting:
            return None
        return self._waiting[0][0] + round(self.settings.max_delay_s * 1e9)

    def flush(self) -> list[Window] | None:
        """Whatever waits, now (shutdown, rebalance)."""
        return self._take() if self._waiting else None

    def _take(self) -> list[Window]:
        n = min(len(self._waiting), self.settings.max_batch)
        return [self._waiting.popleft()[1] for _ in range(n)]


def stack(batch: list[Window]) -> np.ndarray:
    """The model input of a batch: (b, l, s) float32."""
    return np.stack([w.signal for w in batch]).astype(np.float32, copy=False)
