"""``tether agent``: run the local controller of one hypervisor (:mod:`tether.agent`)."""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

import asyncio
import contextlib
import logging
import signal
from enum import StrEnum
from typing import Annotated

import typer

from tether.cli.client import DEFAULT_URL

__all__ = ["agent"]


class Datapath(StrEnum):
    system = "system"
    netdev = "netdev"


def agent(
    chassis: Annotated[str, typer.Option(help="This hypervisor's chassis name.")],
    tunnel_ip: Annotated[str, typer.Option("--tunnel-ip", help="Its VXLAN tunnel endpoint IP.")],
    cleanup: Annotated[
        bool,
        typer.Option(
            "--cleanup",
            help="Only remove tether's flows of dead generations from the bridge, then exit.",
        ),
    ] = False,
    server: Annotated[
        str, typer.Option(envvar="TETHER_URL", help="The controller's REST API.")
    ] = DEFAULT_URL,
    ovsdb: Annotated[
        str, typer.Option(help="The local Open vSwitch database (unix:PATH).")
    ] = "unix:/var/run/openvswitch/db.sock",
    bridge: Annotated[str, typer.Option(help="The integration bridge.")] = "br-int",
    datapath: Annotated[
        Datapath, typer.Option(help="system (kernel) or netdev (userspace) datapath.")
    ] = Datapath.system,
    store: Annotated[
        str | None,
        typer.Option(
            help="etcd://HOST:PORT[,...]: read the model from etcd directly "
            "(default: through the controller's watch API)."
        ),
    ] = None,
    audit_interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between flow audits (repairs what differs).")
    ] = 30.0,
    metrics_listen: Annotated[
        str | None,
        typer.Option(
            "--metrics-listen", help="HOST:PORT to serve Prometheus metrics on (/metrics)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run the hypervisor agent: register the chassis, keep the bridge's flows equal to the
    model, answer DHCP. Stops on SIGINT or SIGTERM."""
    from tether.agent import AgentSettings, HypervisorAgent
    from tether.agent.bridge import LocalOvs
    from tether.agent.metrics import parse_listen
    from tether.model.fields import parse_name, parse_tunnel_ip

    try:
        settings = AgentSettings(
            chassis=parse_name(chassis),
            tunnel_ip=parse_tunnel_ip(tunnel_ip),
            server=server,
            ovsdb=ovsdb,
            bridge=parse_name(bridge),
            datapath=datapath.value,
            store=store,
            audit_seconds=audit_interval,
            metrics_listen=metrics_listen,
        )
        settings.rundir  # noqa: B018 - validates --ovsdb
        if metrics_listen is not None:
            parse_listen(metrics_listen)
        if store is not None and not store.startswith("etcd://"):
            raise ValueError(
                f"store: {store!r} is not etcd://HOST:PORT (the agent reads etcd only)"
            )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    async def clean() -> None:
        removed = await HypervisorAgent(settings, LocalOvs(settings.ovsdb)).cleanup()
        typer.echo(f"removed {removed} flows of dead generations from {settings.bridge}")

    async def run() -> None:
        runner = HypervisorAgent(settings, LocalOvs(settings.ovsdb))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await runner.start()
        try:
            await stop.wait()
        finally:
            await runner.stop()

    try:
        asyncio.run(clean() if cleanup else run())
    except (OSError, ConnectionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except Exception as exc:  # httpx errors and the like: one line, not a traceback
        with contextlib.suppress(Exception):
            logging.getLogger(__name__).debug("agent failed", exc_info=exc)
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
