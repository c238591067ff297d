"""Parsing of store URLs (``sqlite:PATH``, ``etcd://HOST:PORT,...``); pure."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StoreURL", "parse_store_url"]


@dataclass(frozen=True, slots=True)
class StoreURL:
    backend: str
    path: str = ""
    endpoints: tuple[tuple[str, int], ...] = ()


def parse_store_url(url: str) -> StoreURL:
    """``sqlite:PATH`` or ``etcd://HOST:PORT[,HOST:PORT...]``; ValueError names the problem."""
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise ValueError("store: sqlite URL needs a path, e.g. sqlite:/var/lib/tether/db")
        return StoreURL(backend="sqlite", path=path)
    if url.startswith("etcd://"):
        endpoints = []
        for part in url.removeprefix("etcd://").rstrip("/").split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"store: bad etcd endpoint {part!r}, expected HOST:PORT")
            endpoints.append((host.strip("[]"), int(port)))
        return StoreURL(backend="etcd", endpoints=tuple(endpoints))
    raise ValueError(f"store: unknown store URL {url!r}; use sqlite:PATH or etcd://HOST:PORT")
