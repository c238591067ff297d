"""The JSON-RPC 1.0 session of one OVSDB connection, as a pure engine (like h11).

Bytes in, events out; requests in, bytes out; no I/O and no clock. :mod:`.connection` is the
asyncio shell that moves the bytes. The engine

* cuts the stream into messages (:class:`~tether.ovsdb.framing.JsonSplitter`);
* allocates request ids and matches every reply to its request (:class:`Reply` carries the
  method it answers); a reply to an unknown id is dropped with a warning;
* answers the server's ``echo`` requests itself, with the same params (the answers wait in
  :meth:`Session.data_to_send`), and refuses any other server request with
  ``"unknown method"``;
* hands every notification (``update``, ``update2``, ``update3``, ``locked``, ``stolen``,
  ``monitor_canceled``, ...) up as a :class:`Notification`.

Message kinds (RFC 7047 section 4): a request has ``method``, ``params`` and ``id``; a
notification is a request with ``"id": null``; a reply has ``result``, ``error`` and ``id``.
ovsdb-server omits ``result`` in some error replies (``{"id":1,"error":"unknown method"}``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from tether.ovsdb.errors import OvsdbProtocolError
from tether.ovsdb.framing import DEFAULT_MAX_MESSAGE_BYTES, JsonSplitter

__all__ = ["Event", "Notification", "Reply", "Session"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reply:
    """The server's answer to request ``id`` (a ``method`` request); ``error`` None: success."""

    id: int
    method: str
    result: Any
    error: Any


@dataclass(frozen=True, slots=True)
class Notification:
    """A message from the server that expects no answer."""

    method: str
    params: list[Any]


Event = Reply | Notification


class Session:
    """One connection's JSON-RPC state: pending requests and the inbound byte stream."""

    def __init__(self, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._splitter = JsonSplitter(max_message_bytes=max_message_bytes)
        self._pending: dict[int, str] = {}
        self._next_id = 1
        self._outbox: list[bytes] = []

    @property
    def pending(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._pending)

    def request(self, method: str, params: list[Any]) -> tuple[int, bytes]:
        """Allocate an id for ``method(params)``; return it and the bytes to send."""
        request_id = self._next_id
        self._next_id += 1
        self._pending[request_id] = method
        data = orjson.dumps({"id": request_id, "method": method, "params": params})
        return request_id, data

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; return the events they complete, in order."""
        events: list[Event] = []
        for message in self._splitter.feed(data):
            event = self._classify(message)
            if event is not None:
                events.append(event)
        return events

    def data_to_send(self) -> bytes:
        """Bytes the engine wants sent (answers to the server's requests); clears them."""
        data = b"".join(self._outbox)
        self._outbox.clear()
        return data

    def connection_lost(self) -> list[int]:
        """The transport is gone: forget and return the ids that will never be answered."""
        lost = list(self._pending)
        self._pending.clear()
        return lost

    def _classify(self, message: Any) -> Event | None:
        if not isinstance(message, dict):
            raise OvsdbProtocolError(f"a JSON-RPC message must be an object: {message!r:.80}")
        method = message.get("method")
        if method is not None:
            return self._inbound_request(method, message)
        if "id" not in message or ("result" not in message and "error" not in message):
            raise OvsdbProtocolError(f"neither a request nor a reply: {message!r:.120}")
        request_id = message["id"]
        sent = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if sent is None:
            log.warning("dropping a reply to unknown request id %r", request_id)
            return None
        return Reply(request_id, sent, message.get("result"), message.get("error"))

    def _inbound_request(self, method: Any, message: dict[str, Any]) -> Notification | None:
        params = message.get("params")
        if not isinstance(method, str) or not isinstance(params, list):
            raise OvsdbProtocolError(f"malformed request or notification: {message!r:.120}")
        request_id = message.get("id")
        if request_id is None:
            return Notification(method, params)
        if method == "echo":
            self._answer(request_id, params, None)
        else:
            self._answer(request_id, None, "unknown method")
        return None

    def _answer(self, request_id: Any, result: Any, error: Any) -> None:
        self._outbox.append(orjson.dumps({"id": request_id, "result": result, "error": error}))
