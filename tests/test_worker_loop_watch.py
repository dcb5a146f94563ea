"""A worker whose event loop is blocked watches no bed: `LoopWatch` ends the process loudly, saying where the loop
was stuck, so that the group moves the beds (a real process, a real blocked loop)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from streamer.worker.deadline import FORCED_EXIT_STATUS

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = textwrap.dedent(
    """
    import asyncio, logging, time
    from streamer.worker.deadline import LoopWatch

    def stuck_in_a_pathological_step():
        time.sleep(60)

    async def main():
        logging.basicConfig(level=logging.INFO)
        watch = asyncio.ensure_future(LoopWatch(0.5).run())
        await asyncio.sleep(1.5)  # a loop that runs beats in time: nothing happens
        print("alive after 1.5 s", flush=True)
        stuck_in_a_pathological_step()

    asyncio.run(main())
    """
)


def test_a_blocked_event_loop_ends_the_process_and_says_where_it_was_stuck() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=30, cwd=ROOT, check=False
    )
    assert done.returncode == FORCED_EXIT_STATUS, done.stderr
    assert "alive after 1.5 s" in done.stdout  # not before the loop was blocked
    assert "the event loop has not run for" in done.stderr
    assert "stuck_in_a_pathological_step" in done.stderr  # where: the operator's first question
    assert time.monotonic() - started < 15  # ~2 s: 1.5 s running, then the 0.5 s timeout, not the 60 s block
