"""One MLLP link to a peer (python-hl7's asyncio streams): send a message, wait for its ACK.

Framing is the library's (``hl7.mllp``: <VT> message <FS><CR>); this module adds TLS, a bounded wait for the
ACK, and a reconnect on the next send after any failure. Callers decide what a failure means (retry, count).
"""

from __future__ import annotations

import asyncio
import ssl

from hl7.mllp import InvalidBlockError, open_hl7_connection

from streamer.hl7.messages import AckReply, parse_ack

#: What a broken link looks like: the caller reconnects and tries again.
LINK_ERRORS = (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, InvalidBlockError, ValueError)


class MllpLink:
    """A lazily (re)connected MLLP client. Not for concurrent use: one message in flight at a time, as
    original-mode HL7 acknowledgement expects."""

    def __init__(self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None, timeout_s: float = 10.0):
        self.host, self.port, self.ssl_context, self.timeout_s = host, port, ssl_context, timeout_s
        self._streams = None

    async def send(self, message: str) -> AckReply:
        """Sends `message` and returns the peer's ACK; raises one of LINK_ERRORS (the link is then closed)."""
        try:
            if self._streams is None:
                self._streams = await asyncio.wait_for(
                    open_hl7_connection(self.host, self.port, ssl=self.ssl_context, encoding="utf-8"), self.timeout_s
                )
            reader, writer = self._streams
            writer.writeblock(message.encode("utf-8"))
            await writer.drain()
            block = await asyncio.wait_for(reader.readblock(), self.timeout_s)
            return parse_ack(block)
        except LINK_ERRORS:
            await self.close()
            raise

    async def close(self) -> None:
        streams, self._streams = self._streams, None
        if streams is not None:
            streams[1].close()
            try:
                await asyncio.wait_for(streams[1].wait_closed(), 2.0)
            except (*LINK_ERRORS, ConnectionError):
                pass


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT -> (host, port) (port 0: a free one, for a listener); ValueError with the reason otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
