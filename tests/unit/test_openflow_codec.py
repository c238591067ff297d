"""The agent's OpenFlow 1.3 messages, against the byte layouts of the specification."""

from __future__ import annotations

import struct

import pytest

from tether.openflow.codec import (
    CodecError,
    Message,
    MessageSplitter,
    decode_packet_in,
    echo_reply,
    hello,
    packet_out,
    set_config,
)


def raw_packet_in(in_port: int, data: bytes, *, cookie: int = 0x7E7E) -> bytes:
    oxm = struct.pack("!HBBI", 0x8000, 0 << 1, 4, in_port)  # OXM_OF_IN_PORT
    oxm += struct.pack("!HBBQ", 0x8000, 2 << 1, 8, 0)  # OXM_OF_METADATA, ignored
    match_len = 4 + len(oxm)
    match = struct.pack("!HH", 1, match_len) + oxm
    match += bytes((match_len + 7) // 8 * 8 - match_len)
    body = struct.pack("!IHBBQ", 0xFFFFFFFF, len(data), 1, 30, cookie) + match + b"\0\0" + data
    return struct.pack("!BBHI", 4, 10, 8 + len(body), 99) + body


def test_a_packet_in_says_where_the_packet_came_from_and_carries_it_whole() -> None:
    frames = MessageSplitter().feed(raw_packet_in(7, b"dhcp-bytes"))
    packet_in = decode_packet_in(frames[0])
    assert (packet_in.in_port, packet_in.data, packet_in.table_id) == (7, b"dhcp-bytes", 30)
    assert packet_in.cookie == 0x7E7E and packet_in.total_len == 10


def test_the_splitter_cuts_a_stream_anywhere() -> None:
    stream = hello(1) + raw_packet_in(3, b"x" * 50) + struct.pack("!BBHI", 4, 2, 12, 5) + b"ping"
    splitter = MessageSplitter()
    got: list[Message] = []
    for i in range(0, len(stream), 7):
        got += splitter.feed(stream[i : i + 7])
    assert [(m.type, m.xid) for m in got] == [(0, 1), (10, 99), (2, 5)]
    assert echo_reply(got[2]) == struct.pack("!BBHI", 4, 3, 12, 5) + b"ping"
    with pytest.raises(CodecError):
        MessageSplitter().feed(struct.pack("!BBHI", 4, 0, 4, 1))


def test_packet_out_and_set_config_layouts() -> None:
    out = packet_out(9, 4, b"frame")
    version, kind, length, xid = struct.unpack_from("!BBHI", out)
    assert (version, kind, length, xid) == (4, 13, len(out), 9)
    buffer_id, in_port, actions_len = struct.unpack_from("!IIH", out, 8)
    assert (buffer_id, in_port, actions_len) == (0xFFFFFFFF, 0xFFFFFFFD, 16)
    assert struct.unpack_from("!HHIH", out, 24) == (0, 16, 4, 0)
    assert out.endswith(b"frame") and len(out) == 8 + 16 + 16 + 5
    assert set_config(2) == struct.pack("!BBHIHH", 4, 9, 12, 2, 0, 0xFFFF)


def test_a_packet_in_without_its_port_is_refused() -> None:
    body = (
        struct.pack("!IHBBQ", 0xFFFFFFFF, 0, 1, 0, 0)
        + struct.pack("!HH", 1, 4)
        + bytes(4)
        + b"\0\0"
    )
    with pytest.raises(CodecError):
        decode_packet_in(Message(4, 10, 1, body))
