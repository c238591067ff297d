"""Fresh ids (UUID4) and MACs (random, locally administered, unicast) for new objects."""

from __future__ import annotations

import os

__all__ = ["RandomIds"]


class RandomIds:
    def new_id(self) -> str:
        raw = bytearray(os.urandom(16))
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        text = raw.hex()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def new_mac(self) -> str:
        raw = bytearray(os.urandom(6))
        raw[0] = (raw[0] | 0x02) & 0xFE  # locally administered, unicast
        return ":".join(f"{b:02x}" for b in raw)
