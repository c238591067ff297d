"""A lab host's NIC, set up from inside the host's network namespace.

``tether lab host`` (:mod:`.hosts`) runs ``python -m tether.lab.host_nic DEV [--vlan VID]``
with ``ip netns exec HOST``. It does what a server's NIC driver and VLAN sub-interface would:

* **transmit checksums off** (``ETHTOOL_STXCSUM``): the emulated switch's userspace datapath
  reads frames from a veth with ``AF_PACKET`` and does not complete offloaded checksums, so
  without this TCP and UDP between lab hosts would carry bad checksums (ICMP is unaffected);
* **VLAN tagging** when the kernel has no 802.1Q module (``CONFIG_VLAN_8021Q`` unset, as on
  some CI kernels): two tiny eBPF programs on the device's ``clsact`` qdisc — egress pushes tag
  VID on every frame, ingress pops it and drops frames of any other VLAN (or untagged). With
  8021q, :mod:`.hosts` uses an ordinary ``DEV.VID`` sub-interface instead.

The programs are assembled here (no compiler needed) and attached through rtnetlink with the
program's file descriptor (no bpffs pinning), so nothing keeps running once this exits: the
filters hold the programs. Moving the device to another namespace drops its qdiscs and with
them the tagging. The encoders are pure; :func:`main` is the shell.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import os
import platform
import socket
import struct
import sys
from collections.abc import Sequence

__all__ = [
    "HostNicError",
    "clsact_request",
    "disable_tx_checksum",
    "filter_request",
    "main",
    "pop_vlan_program",
    "push_vlan_program",
]

# -- eBPF ----------------------------------------------------------------------------------

_BPF_PROG_LOAD = 5
_BPF_PROG_TYPE_SCHED_CLS = 3
_BPF_FUNC_SKB_VLAN_PUSH = 18
_BPF_FUNC_SKB_VLAN_POP = 19
_SKB_VLAN_PRESENT = 20  # offsetof(struct __sk_buff, vlan_present)
_SKB_VLAN_TCI = 24  # offsetof(struct __sk_buff, vlan_tci)
_TC_ACT_OK, _TC_ACT_SHOT = 0, 2
_SYS_BPF = {"x86_64": 321, "aarch64": 280}


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One ``struct bpf_insn`` (little-endian hosts only, like the syscall numbers above)."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _mov_imm(dst: int, imm: int) -> bytes:
    return _insn(0xB7, dst, imm=imm)  # BPF_ALU64 | BPF_MOV | BPF_K


def _call(helper: int) -> bytes:
    return _insn(0x85, imm=helper)  # BPF_JMP | BPF_CALL


def _exit() -> bytes:
    return _insn(0x95)  # BPF_JMP | BPF_EXIT


def _check_vid(vid: int) -> None:
    if not 1 <= vid <= 4094:
        raise ValueError(f"VLAN {vid} is not between 1 and 4094")


def push_vlan_program(vid: int) -> bytes:
    """Egress: ``bpf_skb_vlan_push(skb, htons(0x8100), vid); return TC_ACT_OK``."""
    _check_vid(vid)
    return b"".join(
        [
            _mov_imm(2, socket.htons(0x8100)),
            _mov_imm(3, vid),
            _call(_BPF_FUNC_SKB_VLAN_PUSH),  # r1 still holds the skb
            _mov_imm(0, _TC_ACT_OK),
            _exit(),
        ]
    )


def pop_vlan_program(vid: int) -> bytes:
    """Ingress: frames tagged ``vid`` lose the tag and pass; every other frame is dropped."""
    _check_vid(vid)
    return b"".join(
        [
            _insn(0x61, 2, 1, _SKB_VLAN_PRESENT),  # r2 = skb->vlan_present (BPF_LDX|W|MEM)
            _insn(0x15, 2, off=6, imm=0),  # if r2 == 0 goto drop
            _insn(0x61, 2, 1, _SKB_VLAN_TCI),  # r2 = skb->vlan_tci
            _insn(0x57, 2, imm=0x0FFF),  # r2 &= VLAN_VID_MASK
            _insn(0x55, 2, off=3, imm=vid),  # if r2 != vid goto drop
            _call(_BPF_FUNC_SKB_VLAN_POP),
            _mov_imm(0, _TC_ACT_OK),
            _exit(),
            _mov_imm(0, _TC_ACT_SHOT),  # drop:
            _exit(),
        ]
    )


class HostNicError(Exception):
    """The NIC could not be set up; the message is one line."""


def _load_program(insns: bytes, name: str) -> int:
    """``bpf(BPF_PROG_LOAD)`` of a ``sched_cls`` program; its file descriptor."""
    number = _SYS_BPF.get(platform.machine())
    if number is None:
        raise HostNicError(f"eBPF VLAN tagging is not supported on {platform.machine()}")
    code = ctypes.create_string_buffer(insns, len(insns))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    attr = ctypes.create_string_buffer(
        struct.pack(
            "<IIQQIIQII16s",
            _BPF_PROG_TYPE_SCHED_CLS,
            len(insns) // 8,
            ctypes.addressof(code),
            ctypes.addressof(license_),
            1,
            len(log),
            ctypes.addressof(log),
            0,
            0,
            name.encode()[:15],
        )
    )
    libc = ctypes.CDLL(None, use_errno=True)
    fd = int(libc.syscall(number, _BPF_PROG_LOAD, attr, len(attr.raw)))
    if fd < 0:
        error = ctypes.get_errno()
        detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise HostNicError(f"loading eBPF program {name}: {os.strerror(error)} {detail[0]}")
    return fd


# -- rtnetlink -----------------------------------------------------------------------------

_RTM_NEWQDISC, _RTM_NEWTFILTER = 36, 44
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_NLMSG_ERROR = 2
_TCA_KIND, _TCA_OPTIONS = 1, 2
_TCA_BPF_FD, _TCA_BPF_NAME, _TCA_BPF_FLAGS = 6, 7, 8
_TCA_BPF_FLAG_ACT_DIRECT = 1
_NLA_F_NESTED = 0x8000
_TC_H_CLSACT = 0xFFFFFFF1
_TC_H_MIN_INGRESS, _TC_H_MIN_EGRESS = 0xFFF2, 0xFFF3
_ETH_P_ALL = 0x0003


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _message(kind: int, flags: int, seq: int, tcmsg: bytes, attrs: bytes) -> bytes:
    body = tcmsg + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def _tcmsg(ifindex: int, *, handle: int, parent: int, info: int) -> bytes:
    return struct.pack("=BBHiIII", socket.AF_UNSPEC, 0, 0, ifindex, handle, parent, info)


def clsact_request(ifindex: int, seq: int) -> bytes:
    """``tc qdisc add dev IFINDEX clsact``."""
    tcmsg = _tcmsg(ifindex, handle=0xFFFF0000, parent=_TC_H_CLSACT, info=0)
    flags = _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
    return _message(_RTM_NEWQDISC, flags, seq, tcmsg, _attr(_TCA_KIND, b"clsact\0"))


def filter_request(ifindex: int, *, egress: bool, fd: int, name: str, seq: int) -> bytes:
    """``tc filter add dev IFINDEX ingress|egress prio 1 bpf da fd FD``."""
    minor = _TC_H_MIN_EGRESS if egress else _TC_H_MIN_INGRESS
    parent = (_TC_H_CLSACT & 0xFFFF0000) | minor
    info = (1 << 16) | socket.htons(_ETH_P_ALL)
    options = (
        _attr(_TCA_BPF_FD, struct.pack("=I", fd))
        + _attr(_TCA_BPF_NAME, name.encode() + b"\0")
        + _attr(_TCA_BPF_FLAGS, struct.pack("=I", _TCA_BPF_FLAG_ACT_DIRECT))
    )
    attrs = _attr(_TCA_KIND, b"bpf\0") + _attr(_TCA_OPTIONS | _NLA_F_NESTED, options)
    flags = _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
    tcmsg = _tcmsg(ifindex, handle=1, parent=parent, info=info)
    return _message(_RTM_NEWTFILTER, flags, seq, tcmsg, attrs)


def ack_error(reply: bytes, seq: int) -> int | None:
    """The errno of the ``NLMSG_ERROR`` answering ``seq`` (0: success), None if absent."""
    offset = 0
    while offset + 16 <= len(reply):
        length, kind, _, got_seq, _ = struct.unpack_from("=IHHII", reply, offset)
        if kind == _NLMSG_ERROR and got_seq == seq:
            (code,) = struct.unpack_from("=i", reply, offset + 16)
            return -int(code)
        offset += max((length + 3) & ~3, 16)
    return None


def _netlink(requests: Sequence[tuple[str, bytes, int]]) -> None:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        for what, request, seq in requests:
            sock.send(request)
            code = None
            while code is None:
                code = ack_error(sock.recv(65536), seq)
            if code:
                raise HostNicError(f"{what}: {os.strerror(code)}")


def attach_vlan_tagging(device: str, vid: int) -> None:
    """Tag frames leaving ``device`` with ``vid``; untag (and filter) frames arriving."""
    ifindex = socket.if_nametoindex(device)
    push = _load_program(push_vlan_program(vid), f"vlan{vid}_push")
    pop = _load_program(pop_vlan_program(vid), f"vlan{vid}_pop")
    try:
        _netlink(
            [
                (f"clsact qdisc on {device}", clsact_request(ifindex, 1), 1),
                (
                    f"egress filter on {device}",
                    filter_request(ifindex, egress=True, fd=push, name="vlan_push", seq=2),
                    2,
                ),
                (
                    f"ingress filter on {device}",
                    filter_request(ifindex, egress=False, fd=pop, name="vlan_pop", seq=3),
                    3,
                ),
            ]
        )
    finally:
        os.close(push)
        os.close(pop)


# -- ethtool -------------------------------------------------------------------------------

_SIOCETHTOOL = 0x8946
_ETHTOOL_STXCSUM = 0x17


def disable_tx_checksum(device: str) -> None:
    """``ethtool -K DEVICE tx off``: the stack computes checksums before transmitting."""
    value = ctypes.create_string_buffer(struct.pack("=II", _ETHTOOL_STXCSUM, 0))
    request = struct.pack("=16sQ", device.encode(), ctypes.addressof(value)).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            fcntl.ioctl(sock.fileno(), _SIOCETHTOOL, request)
        except OSError as exc:
            if exc.errno != errno.EOPNOTSUPP:
                raise HostNicError(f"{device}: cannot turn transmit checksums off: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tether.lab.host_nic")
    parser.add_argument("device")
    parser.add_argument("--vlan", type=int, help="tag with eBPF (no 8021q in the kernel)")
    args = parser.parse_args(argv)
    try:
        disable_tx_checksum(args.device)
        if args.vlan is not None:
            attach_vlan_tagging(args.device, args.vlan)
    except (HostNicError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
