"""Errors of the emulated fabric (``tether lab``).

::

    LabError                      anything the lab cannot do; the message is one line
    ├── AsicNotAvailableError     the chosen ASIC model does not exist yet (caller's choice)
    └── DaemonError               a daemon (ovsdb-server, ovsdb-tool) is missing or failed
"""

from __future__ import annotations

__all__ = ["AsicNotAvailableError", "DaemonError", "LabError"]


class LabError(Exception):
    """The lab cannot do what was asked; ``str(error)`` is a one-line reason."""


class AsicNotAvailableError(LabError):
    pass


class DaemonError(LabError):
    pass
