"""Fresh ids (UUID4) and MACs (random, locally administered, unicast) for new objects."""

from __future__ import annotations

import os
import uuid

__all__ = ["RandomIds"]


class RandomIds:
    def new_id(self) -> str:
        return str(uuid.uuid4())

    def new_mac(self) -> str:
        raw = bytearray(os.urandom(6))
        raw[0] = (raw[0] | 0x02) & 0xFE  # locally administered, unicast
        return ":".join(f"{b:02x}" for b in raw)
