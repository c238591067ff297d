"""Names of the lab's network namespaces and links, derived from switch and port names. Pure.

Linux limits interface names to 15 bytes (``IFNAMSIZ`` - 1) without ``/``, ``:`` or white
space, and namespace names become files under ``/run/netns``. Every name here is readable
when it fits (``tl-tor1``, ``tor1-eth1``) and otherwise a readable prefix plus a short hash
of the whole, so two different switches never share a name and the same switch always gets
the same one. Switch and underlay namespaces start with ``tl-``; a host's namespace is
named by its user and recorded by :mod:`.hosts`, which deletes only what it recorded.

Who uses them: :mod:`.ovs_asic` (the switch's namespace and links), :mod:`.underlay` (the
shared segment) and :mod:`.hosts` (a host attaches to ``front_panel_link``).
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "IFNAMSIZ",
    "NAMESPACE_PREFIX",
    "check_interface_name",
    "front_panel_link",
    "switch_namespace",
    "underlay_link",
]

IFNAMSIZ = 15
"""Longest interface name Linux accepts."""
NAMESPACE_PREFIX = "tl-"
_NAMESPACE_MAX = 40
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def _fit(readable: str, whole: str, limit: int) -> str:
    """``readable`` when it is safe and short enough, else a prefix of it plus a hash."""
    clean = _UNSAFE.sub("_", readable)
    if clean == readable and len(readable) <= limit and readable not in (".", ".."):
        return readable
    hashed = _digest(whole, 5)
    return f"{clean[: limit - len(hashed) - 1]}-{hashed}"


def check_interface_name(name: str) -> str | None:
    """Why ``name`` cannot be a Linux interface name, or None if it can."""
    if not name or len(name.encode()) > IFNAMSIZ:
        return f"{name!r}: interface names have 1 to {IFNAMSIZ} bytes"
    if _UNSAFE.search(name) or name in (".", ".."):
        return f"{name!r}: use letters, digits, '_', '.' and '-' only"
    return None


def switch_namespace(switch: str) -> str:
    """The emulated switch's network namespace: ``tl-SWITCH``."""
    return NAMESPACE_PREFIX + _fit(switch, f"switch:{switch}", _NAMESPACE_MAX)


def front_panel_link(switch: str, port: str) -> str:
    """The root-namespace end of ``switch``'s front-panel ``port``: ``SWITCH-PORT``."""
    return _fit(f"{switch}-{port}", f"port:{switch}/{port}", IFNAMSIZ)


def underlay_link(member: str) -> str:
    """The underlay-namespace end of ``member``'s veth (a switch's namespace): ``ul-HASH``."""
    return f"ul-{_digest(f'underlay:{member}', 10)}"
