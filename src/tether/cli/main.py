"""The ``tether`` command: ``serve``, ``demo`` and the resource commands.

The resource commands (:mod:`tether.cli.resources`) are clients of the REST API; ``serve``
runs the controller itself (:mod:`tether.runtime`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from tether.cli import demo, resources

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
    config: Path | None = typer.Option(None, help="TOML file with store, listen, log_level"),
) -> None:
    """Run the controller: the store, the model service and the REST API.

    Settings come from --config, then TETHER_STORE / TETHER_LISTEN / TETHER_LOG_LEVEL, then
    these flags; later sources win.
    """
    from tether.runtime.server import serve as run
    from tether.runtime.settings import SettingsError, load_settings

    try:
        settings = load_settings(config, {"store": store, "listen": listen, "log_level": log_level})
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    run(settings)


app.command(name="demo")(demo.demo)
resources.register(app)


def main() -> None:
    app(prog_name="tether")


if __name__ == "__main__":
    main()
