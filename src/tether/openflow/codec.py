"""The few OpenFlow 1.3 messages the agent's own channel speaks, as bytes. Pure.

Flows reach the switch as ``ovs-ofctl --bundle`` transactions, which encode every match and
action OVS knows and apply them atomically. The agent's OpenFlow connection only has to
stay up and carry DHCP: HELLO, ECHO request/reply, FEATURES request/reply, SET_CONFIG (whole
packets to the controller), PACKET_IN (a punted DHCP request, with the ``in_port`` from its
OXM match) and PACKET_OUT (the answer, out of one port). :class:`MessageSplitter` cuts a
byte stream into messages. Layouts from the OpenFlow 1.3.5 specification, section 7.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "Message",
    "MessageSplitter",
    "PacketIn",
    "decode_packet_in",
    "echo_reply",
    "features_request",
    "hello",
    "packet_out",
    "set_config",
]

VERSION = 0x04
HEADER = struct.Struct("!BBHI")
HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY = 0, 1, 2, 3
FEATURES_REQUEST, FEATURES_REPLY, SET_CONFIG = 5, 6, 9
PACKET_IN, PACKET_OUT = 10, 13
NO_BUFFER = 0xFFFF_FFFF
CONTROLLER_PORT = 0xFFFF_FFFD
OXM_OF_IN_PORT = (0x8000, 0)
MAX_MESSAGE = 65_535


class CodecError(ValueError):
    """Bytes that are not the OpenFlow 1.3 message they claim to be."""


@dataclass(frozen=True, slots=True)
class Message:
    version: int
    type: int
    xid: int
    body: bytes


@dataclass(frozen=True, slots=True)
class PacketIn:
    buffer_id: int
    total_len: int
    reason: int
    table_id: int
    cookie: int
    in_port: int
    data: bytes


def _message(kind: int, xid: int, body: bytes = b"") -> bytes:
    return HEADER.pack(VERSION, kind, HEADER.size + len(body), xid) + body


def hello(xid: int) -> bytes:
    return _message(HELLO, xid)


def echo_reply(request: Message) -> bytes:
    return _message(ECHO_REPLY, request.xid, request.body)


def features_request(xid: int) -> bytes:
    return _message(FEATURES_REQUEST, xid)


def set_config(xid: int, *, miss_send_len: int = 0xFFFF) -> bytes:
    """Flags 0 (normal fragments); ``miss_send_len`` 0xffff: whole packets, unbuffered."""
    return _message(SET_CONFIG, xid, struct.pack("!HH", 0, miss_send_len))


def packet_out(xid: int, port: int, data: bytes, *, in_port: int = CONTROLLER_PORT) -> bytes:
    """``data`` sent out of ``port`` (an OFPAT_OUTPUT action, max_len 0)."""
    action = struct.pack("!HHIH6x", 0, 16, port, 0)
    body = struct.pack("!IIH6x", NO_BUFFER, in_port, len(action)) + action + data
    return _message(PACKET_OUT, xid, body)


def decode_packet_in(message: Message) -> PacketIn:
    if message.type != PACKET_IN:
        raise CodecError(f"message type {message.type} is not PACKET_IN")
    body = message.body
    try:
        buffer_id, total_len, reason, table_id, cookie = struct.unpack_from("!IHBBQ", body, 0)
        match_type, match_len = struct.unpack_from("!HH", body, 16)
        if match_type != 1:
            raise CodecError(f"match type {match_type} is not OXM")
        in_port = _in_port(body[20 : 16 + match_len])
        padded = (match_len + 7) // 8 * 8
        data = body[16 + padded + 2 :]
    except struct.error as exc:
        raise CodecError(f"short PACKET_IN: {exc}") from None
    if in_port is None:
        raise CodecError("PACKET_IN without in_port")
    return PacketIn(buffer_id, total_len, reason, table_id, cookie, in_port, bytes(data))


def _in_port(fields: bytes) -> int | None:
    i = 0
    while i + 4 <= len(fields):
        oxm_class, field_hm, length = struct.unpack_from("!HBB", fields, i)
        if (oxm_class, field_hm >> 1) == OXM_OF_IN_PORT and length == 4:
            port: int = struct.unpack_from("!I", fields, i + 4)[0]
            return port
        i += 4 + length
    return None


class MessageSplitter:
    """Bytes in, whole messages out (the stream may cut them anywhere)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER.size:
            version, kind, length, xid = HEADER.unpack_from(self._buffer, 0)
            if length < HEADER.size:
                raise CodecError(f"message length {length} is shorter than its header")
            if len(self._buffer) < length:
                break
            body = bytes(self._buffer[HEADER.size : length])
            del self._buffer[:length]
            messages.append(Message(version, kind, xid, body))
        return messages
