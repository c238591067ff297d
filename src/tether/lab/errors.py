"""Errors of the emulated fabric (``tether lab``).

::

    LabError                      anything the lab cannot do; the message is one line
    ├── AsicNotAvailableError     the chosen ASIC model cannot run here (caller's choice)
    ├── DaemonError               a daemon (ovsdb-server, ovsdb-tool, ovs-vswitchd) is
    │                             missing or failed
    └── NetworkSetupError         a namespace, link or address could not be set up: it exists
                                  already (left over? not ours?) or iproute2 refused it
"""

from __future__ import annotations

__all__ = ["AsicNotAvailableError", "DaemonError", "LabError", "NetworkSetupError"]


class LabError(Exception):
    """The lab cannot do what was asked; ``str(error)`` is a one-line reason."""


class AsicNotAvailableError(LabError):
    pass


class DaemonError(LabError):
    pass


class NetworkSetupError(LabError):
    pass
