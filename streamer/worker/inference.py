"""The micro-batcher's flush loop: a batch at max size or max delay, the model in a thread, the alarm engine over
each batch while the model already runs the next one (batches conclude in order), the outputs on their way to the
broker in the background; once the broker has them, the inputs that completed the batch's windows are
acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from streamer.metrics import WorkerMetrics
from streamer.worker.config import WorkerConfig
from streamer.worker.core import Batch, Core
from streamer.worker.deadline import exit_now
from streamer.worker.delivery import AckTracker
from streamer.worker.outputs import Outputs
from streamer.worker.transport import App

log = logging.getLogger("streamer.worker")
TICK_S = 0.5  # timer work (stalled beds, held chunks) at least this often
MAX_BATCHES_IN_FLIGHT = 8  # batches whose outputs may await the broker's ack while the next one runs


@dataclass
class InferenceLoop:
    app: App
    core: Core
    config: WorkerConfig
    outputs: Outputs
    acks: AckTracker
    metrics: WorkerMetrics
    wake: asyncio.Event  # set by the input when windows wait
    executor: ThreadPoolExecutor = field(
        init=False, default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="enecg-infer")
    )
    in_flight: asyncio.Semaphore = field(
        init=False, default_factory=lambda: asyncio.Semaphore(MAX_BATCHES_IN_FLIGHT)
    )  # batches whose outputs await the broker
    settling: set[asyncio.Task] = field(init=False, default_factory=set)  # their tasks, held until done

    async def run(self) -> None:
        """Runs while the worker runs; also while Faust stops: it waits for in-flight inputs to be acknowledged,
        then cancels this task."""
        core = self.core
        loop = asyncio.get_running_loop()
        next_tick = quiet_until = time.monotonic()
        running: tuple[Batch, asyncio.Future, float] | None = None  # the batch whose model call is under way
        while True:
            if self.app.rebalancing or self.app.should_stop:  # consumption pauses: silence is ours, not the beds'
                quiet_until = time.monotonic() + core.assembler.settings.stall_s + TICK_S
            if time.monotonic() >= max(next_tick, quiet_until):
                await self.outputs.publish_and_wait(core.tick())
                next_tick = time.monotonic() + TICK_S
            batch = core.take_batch()
            if batch is None and running is None:
                wait = core.seconds_to_deadline()
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), min(TICK_S, wait if wait is not None else TICK_S))
                continue
            started = None
            if batch is not None:
                started = (batch, loop.run_in_executor(self.executor, core.predict, batch), time.monotonic())
            if running is not None:
                await self.conclude(*running)
            running = started

    async def conclude(self, batch: Batch, outputs: asyncio.Future, submitted: float) -> None:
        """The alarm engine over a batch the model has run on; its outputs reach the broker in the background.
        A model call not back within the model timeout of its submission ends the process (`exit_now`): a hung
        runtime or device would leave every bed of this worker unwatched while it still holds them."""
        timeout_s = self.config.model_timeout_s
        try:
            result = await asyncio.wait_for(asyncio.shield(outputs), max(0.0, submitted + timeout_s - time.monotonic()))
        except TimeoutError:
            exit_now(
                f"a model call of {len(batch.windows)} windows has not returned within {timeout_s:g} s "
                "(a hung runtime or device): exiting so that the group moves this worker's beds to another"
            )
        if skipped := [w for w in batch.skipped if w is not None]:
            log.warning(
                "behind: %d windows of %d beds waited a hop and were skipped (every other window analysed); the "
                "model serves fewer beds than this worker holds",
                len(skipped), len({w.bed_id for w in skipped}),
            )  # fmt: skip
        sends = await self.outputs.publish(self.core.conclude(batch, result))
        await self.in_flight.acquire()  # the next batch runs while this one's outputs reach the broker
        task = asyncio.ensure_future(self._settle(batch, sends))
        self.settling.add(task)
        task.add_done_callback(self.settling.discard)

    async def _settle(self, batch: Batch, sends: list[asyncio.Future]) -> None:
        """Once the broker has a batch's outputs: acknowledge the inputs that completed its windows."""
        try:
            await asyncio.gather(*sends)
            now = time.time_ns()
            for window in batch.windows:
                self.metrics.lag_ms.observe((now - window.arrival_ns) / 1e6)
            for token in batch.tokens + batch.skipped_tokens:
                self.acks.window_done(token)
        except Exception as error:  # the broker refused outputs: stop, inputs stay unacknowledged
            await self.app.crash(error)
        finally:
            self.in_flight.release()
