"""ICMP echo between lab hosts: ``python -m tether.lab.ping [-c N] [-W S] [-i S] DEST``.

Run it inside a host with ``ip netns exec HOST``. It exists because minimal machines (CI
images) often lack iputils' ``ping``; it speaks the same ICMP echo over a raw socket (root,
like the lab) and keeps ping's exit status: 0 when at least one reply came back, 1 when
none did. The packet encoders are pure; :func:`ping` is the shell.

``--stream`` is for measuring loss while something restarts: it sends every ``-i`` seconds
whether or not the last reply came (``-c 0``: until SIGINT or SIGTERM), prints each reply as
``reply seq=N sent=T received=T`` (``time.monotonic()``, the system-wide clock, so the caller
can line replies up with its own events), waits ``-W`` for the last replies, then prints the
summary and ``lost: seq,...``.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence

__all__ = ["checksum", "echo_request", "main", "ping", "reply_sequence", "stream"]

_ECHO_REQUEST, _ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, sequence: int, payload: bytes = b"tether lab ping") -> bytes:
    """An ICMP echo request (type 8) with a correct checksum."""
    header = struct.pack("!BBHHH", _ECHO_REQUEST, 0, 0, ident, sequence)
    total = checksum(header + payload)
    return struct.pack("!BBHHH", _ECHO_REQUEST, 0, total, ident, sequence) + payload


def reply_sequence(packet: bytes, ident: int) -> int | None:
    """The sequence number of an IPv4 packet holding our echo reply, else None."""
    if len(packet) < 20:
        return None
    offset = (packet[0] & 0x0F) * 4
    if len(packet) < offset + 8:
        return None
    kind, _, _, got_ident, sequence = struct.unpack_from("!BBHHH", packet, offset)
    if kind != _ECHO_REPLY or got_ident != ident:
        return None
    return int(sequence)


def _await_reply(sock: socket.socket, ident: int, sequence: int, deadline: float) -> bool:
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if ready and reply_sequence(sock.recv(65535), ident) == sequence:
            return True
    return False


def ping(destination: str, *, count: int = 3, timeout: float = 1.0, interval: float = 1.0) -> int:
    """Send ``count`` echo requests; the number of replies (each awaited ``timeout`` s)."""
    ident = os.getpid() & 0xFFFF
    received = 0
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        for sequence in range(1, count + 1):
            started = time.monotonic()
            sock.sendto(echo_request(ident, sequence), (destination, 0))
            if _await_reply(sock, ident, sequence, started + timeout):
                received += 1
                elapsed = (time.monotonic() - started) * 1000
                print(f"reply from {destination}: icmp_seq={sequence} time={elapsed:.2f} ms")
            else:
                print(f"no reply from {destination}: icmp_seq={sequence}")
            if sequence < count:
                time.sleep(max(0.0, started + interval - time.monotonic()))
    print(f"{count} packets transmitted, {received} received")
    return received


def stream(destination: str, *, count: int = 0, timeout: float = 1.0, interval: float = 0.1) -> int:
    """Send an echo request every ``interval`` s (``count`` of them, 0: until SIGINT or
    SIGTERM); print every reply as it comes and the lost sequence numbers at the end; the
    number of replies."""
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    ident = os.getpid() & 0xFFFF
    sent_at: dict[int, float] = {}
    received: set[int] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        next_send = time.monotonic()
        last_send = next_send
        while True:
            now = time.monotonic()
            sending = not stopping and (count == 0 or len(sent_at) < count)
            if not sending and now >= last_send + timeout:
                break
            if sending and now >= next_send:
                sequence = len(sent_at) + 1
                sock.sendto(echo_request(ident, sequence & 0xFFFF), (destination, 0))
                sent_at[sequence] = last_send = now
                next_send += interval
                continue
            wait = (next_send if sending else last_send + timeout) - now
            ready, _, _ = select.select([sock], [], [], max(0.0, min(wait, 0.05)))
            if not ready:
                continue
            got = reply_sequence(sock.recv(65535), ident)
            if got is not None and got not in received and got in sent_at:
                received.add(got)
                print(
                    f"reply seq={got} sent={sent_at[got]:.3f} received={time.monotonic():.3f}",
                    flush=True,
                )
    lost = sorted(set(sent_at) - received)
    print(f"{len(sent_at)} packets transmitted, {len(received)} received")
    print("lost: " + ",".join(map(str, lost)), flush=True)
    return len(received)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tether.lab.ping")
    parser.add_argument("destination")
    parser.add_argument("-c", dest="count", type=int, default=3)
    parser.add_argument("-W", dest="timeout", type=float, default=1.0)
    parser.add_argument("-i", dest="interval", type=float, default=1.0)
    parser.add_argument(
        "--stream", action="store_true", help="send on schedule, report each reply and losses"
    )
    args = parser.parse_args(argv)
    try:
        send = stream if args.stream else ping
        received = send(
            args.destination, count=args.count, timeout=args.timeout, interval=args.interval
        )
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if received else 1


if __name__ == "__main__":
    sys.exit(main())
