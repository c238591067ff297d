"""The agent's OpenFlow 1.3 connection to its bridge (``punix:`` controller socket).

It says HELLO, asks for whole packets (SET_CONFIG), answers ECHO requests, hands every
PACKET_IN to ``on_packet_in`` and sends PACKET_OUTs; when the switch goes away it connects
again until :meth:`OpenFlowChannel.stop`, every :data:`RETRY_SECONDS` at most (a refused unix
connect costs microseconds, and the agent must notice a restarted ``ovs-vswitchd`` within a
fraction of a second). ``on_connected`` and ``on_lost`` tell the agent when a session starts
(the switch answered FEATURES_REQUEST) and ends. The bytes are :mod:`tether.openflow.codec`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from pathlib import Path

from tether.openflow import codec

__all__ = ["OpenFlowChannel"]

log = logging.getLogger(__name__)

RETRY_SECONDS = (0.02, 0.05, 0.1)


class OpenFlowChannel:
    def __init__(
        self,
        path: Path,
        on_packet_in: Callable[[codec.PacketIn], None],
        *,
        on_connected: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.on_packet_in = on_packet_in
        self.on_connected = on_connected
        self.on_lost = on_lost
        self.sessions = 0
        """Sessions the switch accepted so far."""
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._xids = itertools.count(1)
        self.connected = asyncio.Event()
        self.errors: list[bytes] = []
        """Bodies of ERROR messages the switch sent (for tests and logs)."""

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.on_lost = None  # stopping is not losing the switch
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()

    def packet_out(self, port: int, data: bytes) -> bool:
        """Send ``data`` out of ``port``; False when not connected."""
        if self._writer is None:
            return False
        self._writer.write(codec.packet_out(next(self._xids), port, data))
        return True

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.path))
            except OSError:
                await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1
                continue
            attempt = 0
            self._writer = writer
            try:
                await self._session(reader, writer)
            except (OSError, codec.CodecError, asyncio.IncompleteReadError) as exc:
                log.warning("OpenFlow channel %s: %s; reconnecting", self.path, exc)
            finally:
                was_up = self.connected.is_set()
                self.connected.clear()
                self._writer = None
                writer.close()
                if was_up and self.on_lost is not None:
                    self.on_lost()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(codec.hello(next(self._xids)))
        writer.write(codec.features_request(next(self._xids)))
        writer.write(codec.set_config(next(self._xids)))
        splitter = codec.MessageSplitter()
        while True:
            data = await reader.read(65536)
            if not data:
                return
            for message in splitter.feed(data):
                self._handle(message, writer)

    def _handle(self, message: codec.Message, writer: asyncio.StreamWriter) -> None:
        if message.type == codec.ECHO_REQUEST:
            writer.write(codec.echo_reply(message))
        elif message.type == codec.FEATURES_REPLY:
            if not self.connected.is_set():
                self.sessions += 1
                self.connected.set()
                if self.on_connected is not None:
                    self.on_connected()
        elif message.type == codec.PACKET_IN:
            try:
                self.on_packet_in(codec.decode_packet_in(message))
            except codec.CodecError as exc:
                log.warning("unreadable PACKET_IN: %s", exc)
        elif message.type == codec.ERROR:
            self.errors.append(message.body)
            log.warning("switch error: %s", message.body.hex())
