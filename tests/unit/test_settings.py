"""Settings precedence (file < environment < flags) and errors that name the key."""

from __future__ import annotations

import pytest

from tether.runtime.settings import Settings, SettingsError, resolve_settings

FILE = 'store = "sqlite:/srv/file.db"\nlisten = "0.0.0.0:7000"\nlog_level = "warning"\n'


def test_defaults() -> None:
    assert resolve_settings(None, {}, {}) == Settings()


def test_flags_win_over_environment_which_wins_over_the_file() -> None:
    env = {"TETHER_STORE": "etcd://10.0.0.1:2379", "TETHER_LOG_LEVEL": "DEBUG"}
    settings = resolve_settings(FILE, env, {"store": "sqlite:/srv/flag.db", "listen": None})
    assert settings.store == "sqlite:/srv/flag.db"
    assert settings.log_level == "debug"
    assert settings.listen == "0.0.0.0:7000" and (settings.host, settings.port) == ("0.0.0.0", 7000)


@pytest.mark.parametrize(
    ("text", "env", "flags", "key"),
    [
        ('stor = "sqlite:/x"\n', {}, {}, "stor"),
        ("listen = 7500\n", {}, {}, "listen"),
        ('listen = "nowhere"\n', {}, {}, "listen"),
        ('store = "mysql://x"\n', {}, {}, "store"),
        ("store = [\n", {}, {}, "config file"),
        (None, {"TETHER_LOG_LEVEL": "loud"}, {}, "TETHER_LOG_LEVEL"),
        (None, {"TETHER_STORE": "etcd://host"}, {}, "TETHER_STORE"),
        (None, {}, {"listen": "127.0.0.1:99999"}, "--listen"),
        (None, {"TETHER_STOER": "sqlite:/x"}, {}, "TETHER_STOER"),
    ],
)
def test_bad_settings_name_their_key(
    text: str | None, env: dict[str, str], flags: dict[str, str | None], key: str
) -> None:
    with pytest.raises(SettingsError) as info:
        resolve_settings(text, env, flags)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
