"""tether — a network virtualization controller for hardware VTEPs and Open vSwitch."""

__version__ = "0.1.0"
