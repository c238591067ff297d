"""Settings of ``tether serve``: a TOML file, then ``TETHER_*`` environment variables, then
flags — each later source wins. Unknown keys in the file are an error naming the key.

``resolve_settings`` is pure (text and mappings in, settings out); ``load_settings`` reads
the file and the environment.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from tether.logical import BatchPolicy, Damping
from tether.ovsdb import TlsFiles
from tether.service.inventory import InventorySettings
from tether.store.url import parse_store_url

__all__ = [
    "DEFAULT_URL",
    "Settings",
    "SettingsError",
    "load_settings",
    "resolve_settings",
    "tls_files",
]

DEFAULT_URL = "http://127.0.0.1:7500"
LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True, slots=True)
class Settings:
    store: str = "sqlite:/var/lib/tether/tether.db"
    """``sqlite:PATH`` or ``etcd://HOST:PORT[,HOST:PORT...]``."""
    listen: str = "127.0.0.1:7500"
    """``HOST:PORT`` the REST API listens on."""
    log_level: str = "info"
    ovsdb_private_key: str = ""
    """PEM private key for ``ssl:`` gateways (with the certificate and CA certificate)."""
    ovsdb_certificate: str = ""
    ovsdb_ca_cert: str = ""
    mac_batch_claims: str = "1"
    """Collected MAC claims reach the reconciler in batches of this many per network..."""
    mac_batch_ms: str = "0"
    """...or after this many milliseconds, whichever comes first (1 and 0: real time)."""
    mac_damping_moves: str = "5"
    """A MAC moving more than this many times within ``mac_damping_seconds`` is held where
    it is (0 turns damping off)."""
    mac_damping_seconds: str = "180"
    agent_timeout: str = "30"
    """Seconds without a heartbeat after which a hypervisor agent counts as gone (its
    chassis and ports turn to ``error``); agents send one every third of it."""

    def inventory(self) -> InventorySettings:
        """The MAC inventory's batching and damping, from these settings."""
        moves = int(self.mac_damping_moves)
        return InventorySettings(
            batch=BatchPolicy(
                max_claims=int(self.mac_batch_claims),
                max_wait=int(self.mac_batch_ms) / 1000,
            ),
            damping=Damping(moves, float(self.mac_damping_seconds)) if moves else None,
        )

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


KEYS = tuple(f.name for f in fields(Settings))
KNOWN_ENV = frozenset({*(f"TETHER_{key.upper()}" for key in KEYS), "TETHER_URL"})
"""``TETHER_URL`` is the CLI's; a misspelt variable is an error rather than ignored."""


def _check(key: str, value: Any, source: str | None = None) -> str:
    """Validate setting ``key``; errors name ``source`` (the file key, variable or flag)."""
    try:
        return _checked(key, value)
    except SettingsError as exc:
        raise SettingsError(source or key, str(exc).removeprefix(f"{key}: ")) from None


INTEGERS = {
    "mac_batch_claims": (1, 1_000_000),
    "mac_batch_ms": (0, 3_600_000),
    "mac_damping_moves": (0, 1_000_000),
    "mac_damping_seconds": (1, 86_400),
    "agent_timeout": (3, 3_600),
}
"""Settings that are whole numbers, with their bounds (TOML integers or digit strings)."""


def _checked(key: str, value: Any) -> str:
    if key in INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise SettingsError(key, f"expected a whole number, got {type(value).__name__}")
        low, high = INTEGERS[key]
        text = str(value).strip()
        if not text.isdigit() or not low <= int(text) <= high:
            raise SettingsError(key, f"{value!r} is not a whole number from {low} to {high}")
        return str(int(text))
    if not isinstance(value, str):
        raise SettingsError(key, f"expected a string, got {type(value).__name__}")
    if key == "store":
        try:
            parse_store_url(value)
        except ValueError as exc:
            raise SettingsError(key, str(exc).removeprefix("store: ")) from None
    elif key == "listen":
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(key, f"{value!r} is not HOST:PORT")
    elif key == "log_level" and value.lower() not in LOG_LEVELS:
        raise SettingsError(key, f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
    elif key.startswith("ovsdb_") and value and not Path(value).is_file():
        raise SettingsError(key, f"{value} is not a readable file")
    return value.lower() if key == "log_level" else value


def resolve_settings(
    file_text: str | None,
    env: Mapping[str, str],
    flags: Mapping[str, str | None],
    *,
    file_name: str = "config file",
) -> Settings:
    settings = Settings()
    if file_text is not None:
        try:
            table = tomllib.loads(file_text)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(file_name, f"not valid TOML: {exc}") from None
        for key, value in table.items():
            if key not in KEYS:
                raise SettingsError(key, f"unknown key in {file_name} (known: {', '.join(KEYS)})")
            settings = replace(settings, **{key: _check(key, value)})
    for name in env:
        if name.startswith("TETHER_") and name not in KNOWN_ENV:
            raise SettingsError(name, f"unknown variable (known: {', '.join(sorted(KNOWN_ENV))})")
    for key in KEYS:
        name = f"TETHER_{key.upper()}"
        if name in env:
            settings = replace(settings, **{key: _check(key, env[name], name)})
    for key, value in flags.items():
        if key not in KEYS:
            raise SettingsError(key, "unknown setting")
        if value is not None:
            flag = f"--{key.replace('_', '-')}"
            settings = replace(settings, **{key: _check(key, value, flag)})
    return settings


def tls_files(settings: Settings) -> TlsFiles | None:
    """The OVSDB TLS files, when all three are set; a SettingsError when only some are."""
    paths = (settings.ovsdb_private_key, settings.ovsdb_certificate, settings.ovsdb_ca_cert)
    if not any(paths):
        return None
    if not all(paths):
        raise SettingsError(
            "ovsdb_private_key",
            "ssl: gateways need all three of ovsdb_private_key, ovsdb_certificate, ovsdb_ca_cert",
        )
    return TlsFiles(*(Path(p) for p in paths))


def load_settings(config: Path | None, flags: Mapping[str, str | None]) -> Settings:
    text = None
    if config is not None:
        try:
            text = config.read_text()
        except OSError as exc:
            raise SettingsError("--config", f"cannot read {config}: {exc.strerror}") from None
    return resolve_settings(text, os.environ, flags, file_name=str(config))
