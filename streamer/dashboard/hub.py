"""Fan-out of board changes to connected browsers (one bounded queue per Server-Sent-Events client).

A browser that falls too far behind is dropped rather than slowing the feed; its page reconnects and
gets a full snapshot, so dropping loses no alarm state.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

Event = tuple[str, str]  # (SSE event name, JSON data)


@dataclass(eq=False)
class Client:
    unit: str | None
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(2000))
    dropped: bool = False


class Hub:
    def __init__(self, queue_size: int = 2000) -> None:
        self.queue_size = queue_size
        self.clients: set[Client] = set()

    def join(self, unit: str | None) -> Client:
        client = Client(unit, asyncio.Queue(self.queue_size))
        self.clients.add(client)
        return client

    def leave(self, client: Client) -> None:
        self.clients.discard(client)

    def publish(self, event: str, data: dict[str, Any], unit: str | None = None, *, every_unit: bool = False) -> None:
        """Queues an event for every client whose unit filter admits `unit` (all of them if `every_unit`)."""
        if not self.clients:
            return
        payload = json.dumps(data, separators=(",", ":"))
        for client in list(self.clients):
            if client.dropped or not (every_unit or client.unit is None or client.unit == unit):
                continue
            try:
                client.queue.put_nowait((event, payload))
            except asyncio.QueueFull:
                self._drop(client)

    def _drop(self, client: Client) -> None:
        client.dropped = True
        while not client.queue.empty():
            client.queue.get_nowait()
        client.queue.put_nowait(None)  # the stream handler ends the response; the page reconnects

    def close_all(self) -> None:
        for client in list(self.clients):
            self._drop(client)
