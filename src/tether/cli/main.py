"""The ``tether`` command: ``serve``, ``agent``, ``demo`` and the resource commands.

The resource commands (:mod:`tether.cli.resources`) are clients of the REST API; ``serve``
runs the controller itself (:mod:`tether.runtime`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer._click import exceptions as usage  # typer vendors click since 0.29

from tether.cli import agent as agent_command
from tether.cli import demo, resources
from tether.cli.lab import lab_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="tether",
    help="Network virtualization controller: VXLAN overlays on hardware VTEPs and OVS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def serve(
    store: str | None = typer.Option(
        None, help="sqlite:PATH (embedded, the default) or etcd://HOST:PORT[,HOST:PORT...]"
    ),
    listen: str | None = typer.Option(None, help="HOST:PORT for the REST API [127.0.0.1:7500]"),
    log_level: str | None = typer.Option(None, help="debug, info, warning or error"),
    ovsdb_private_key: str | None = typer.Option(
        None, help="PEM private key for ssl: gateways (with the two below)"
    ),
    ovsdb_certificate: str | None = typer.Option(None, help="PEM certificate for ssl: gateways"),
    ovsdb_ca_cert: str | None = typer.Option(None, help="PEM CA certificate for ssl: gateways"),
    config: Path | None = typer.Option(
        None, help="TOML file with any of the settings above (store, listen, log_level, ...)"
    ),
) -> None:
    """Run the controller: the store, the model service, the gateways' agents, the REST API.

    Settings come from --config, then TETHER_<SETTING> environment variables (TETHER_STORE,
    TETHER_LISTEN, ...), then these flags; later sources win.
    """
    from tether.runtime.server import serve as run
    from tether.runtime.settings import SettingsError, load_settings, tls_files
    from tether.store import StoreError

    flags = {
        "store": store,
        "listen": listen,
        "log_level": log_level,
        "ovsdb_private_key": ovsdb_private_key,
        "ovsdb_certificate": ovsdb_certificate,
        "ovsdb_ca_cert": ovsdb_ca_cert,
    }
    try:
        settings = load_settings(config, flags)
        tls_files(settings)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        run(settings)
    except StoreError as exc:
        typer.echo(f"error: cannot open the store {settings.store}: {exc}", err=True)
        raise typer.Exit(1) from None


app.command(name="demo")(demo.demo)
app.command(name="agent")(agent_command.agent)
resources.register(app)
app.add_typer(lab_app, name="lab", no_args_is_help=True)


def main() -> None:
    """Run the CLI; every failure, usage errors included, is one line on stderr."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=sys.argv[1:], prog_name="tether", standalone_mode=False)
    except usage.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else "usage: tether COMMAND --help")
        sys.exit(0)
    except usage.UsageError as exc:
        message = " ".join(exc.format_message().split())
        where = f" (try: {exc.ctx.command_path} --help)" if exc.ctx else ""
        typer.echo(f"error: {message}{where}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(130)
    # without standalone mode, click hands back a command's exit code instead of exiting
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
