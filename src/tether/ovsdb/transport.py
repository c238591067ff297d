"""Where and how to connect: OVSDB addresses, TLS settings, opening the byte stream.

``parse_address`` is pure; ``open_stream`` is the only code that touches sockets, and maps
``OSError``/``ssl.SSLError`` to the error tree (:mod:`.errors`). Addresses, as in OVS:

* ``tcp:HOST:PORT`` — IPv6 hosts in brackets (``tcp:[::1]:6640``);
* ``ssl:HOST:PORT`` — mutual TLS with the files in :class:`TlsFiles`;
* ``unix:PATH``.

TLS follows OVS's model: the peer's certificate must chain to the given CA certificate;
host names are not checked (OVS certificates name a switch, not a host).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tether.ovsdb.errors import ConnectionFailedError, InvalidAddressError

__all__ = ["Address", "TlsFiles", "make_tls_context", "open_stream", "parse_address"]


@dataclass(frozen=True, slots=True)
class Address:
    kind: Literal["tcp", "ssl", "unix"]
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.kind}:{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files for ``ssl:`` addresses: this client's key and certificate, the CA's."""

    private_key: Path
    certificate: Path
    ca_cert: Path


def parse_address(text: str) -> Address:
    kind, sep, rest = text.partition(":")
    if not sep or not rest:
        raise InvalidAddressError(f"{text!r}: expected tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH")
    if kind == "unix":
        return Address("unix", path=rest)
    if kind not in ("tcp", "ssl"):
        raise InvalidAddressError(f"{text!r}: unknown kind {kind!r} (tcp, ssl or unix)")
    host, sep, port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidAddressError(f"{text!r}: expected {kind}:HOST:PORT")
    return Address("tcp" if kind == "tcp" else "ssl", host=host, port=int(port))


def make_tls_context(files: TlsFiles) -> ssl.SSLContext:
    """A client context presenting ``files``' key and certificate, trusting only its CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # OVS's model: trust the CA, not a host name
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(files.certificate, files.private_key)
        context.load_verify_locations(files.ca_cert)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidAddressError(f"cannot use the TLS files {files}: {exc}") from exc
    return context


async def open_stream(
    address: Address,
    protocol_factory: Callable[[], asyncio.Protocol],
    *,
    tls: ssl.SSLContext | None = None,
) -> asyncio.Transport:
    """Connect to ``address`` and attach a protocol from ``protocol_factory``."""
    loop = asyncio.get_running_loop()
    if address.kind == "ssl" and tls is None:
        raise InvalidAddressError(f"{address}: ssl: needs TLS files")
    try:
        if address.kind == "unix":
            transport, _ = await loop.create_unix_connection(protocol_factory, address.path)
        else:
            transport, _ = await loop.create_connection(
                protocol_factory,
                address.host,
                address.port,
                ssl=tls if address.kind == "ssl" else None,
            )
    except (OSError, ssl.SSLError) as exc:  # ssl.SSLError is an OSError; named for the reader
        raise ConnectionFailedError(f"cannot connect to {address}: {exc}") from exc
    return transport
