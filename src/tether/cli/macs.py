"""``tether mac``: where every MAC lives, why, and claims reported by hand.

* ``tether mac list [--network NET] [--device D]`` — network, MAC, IP, location (device and
  tunnel IP), slaves, age and flags of every located MAC;
* ``tether mac show MAC [--network NET]`` — every claim on the MAC, oldest first, with its
  revision, role and standing, and the reason for the decision;
* ``tether mac claim`` / ``tether mac unclaim`` — record or withdraw a claim for a device
  tether does not collect from.

Each command is one REST call (``/v1/macs``); errors are one line on stderr, exit code 1.
"""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

import typer

from tether.cli.client import DEFAULT_URL, segment
from tether.cli.options import JsonOpt, UrlOpt
from tether.cli.options import api as _api
from tether.cli.output import dash, print_details, print_json, print_line, print_table

__all__ = ["mac_app"]

Obj = Mapping[str, Any]

mac_app = typer.Typer(help="The MAC inventory: where every MAC lives, and why.")

NetworkOpt = Annotated[str | None, typer.Option("--network", help="Network name or id.")]
TenantOpt = Annotated[
    str | None, typer.Option("--tenant", help="Tenant of the network's name, if ambiguous.")
]


class Role(StrEnum):
    master = "master"
    slave = "slave"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def _location(where: Obj | None) -> tuple[str, str]:
    if not where:
        return "-", "-"
    return str(where["device"]), dash(where.get("tunnel_ip"))


@mac_app.command("list")
def mac_list(
    network: NetworkOpt = None,
    tenant: TenantOpt = None,
    device: Annotated[
        str | None, typer.Option("--device", help="Only MACs located behind this device.")
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """List located MACs: network, MAC, IP, location, slaves, age, flags."""
    with _api(url) as api:
        params = {"network": network, "tenant": tenant, "device": device}
        macs = api.list_all("/v1/macs", params)
    if as_json:
        print_json(macs)
        return
    rows = []
    for entry in macs:
        where, tunnel = _location(entry.get("location"))
        rows.append(
            [
                entry.get("network_name") or entry["network"],
                entry["mac"],
                dash(entry.get("ip")),
                where,
                tunnel,
                ", ".join(entry.get("slaves") or []) or "-",
                _age(entry.get("age_seconds")),
                ", ".join(entry.get("flags") or []) or "-",
            ]
        )
    header = ["NETWORK", "MAC", "IP", "DEVICE", "TUNNEL IP", "SLAVES", "AGE", "FLAGS"]
    print_table(header, rows)


@mac_app.command("show")
def mac_show(
    mac: Annotated[str, typer.Argument(help="The MAC address.")],
    network: NetworkOpt = None,
    tenant: TenantOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Show every claim on a MAC (oldest first) and why it lives where it does."""
    with _api(url) as api:
        shown = api.get(f"/v1/macs/{segment(mac)}", {"network": network, "tenant": tenant})
    if as_json:
        print_json(shown)
        return
    for entry in shown:
        where, tunnel = _location(entry.get("location"))
        print_details(
            f"MAC {entry['mac']} in network {entry.get('network_name') or entry['network']}",
            [
                ("location", f"{where} ({tunnel})" if where != "-" else "-"),
                ("rule", entry["rule"]),
                ("reason", entry["reason"]),
                ("damped", "yes" if entry.get("damped") else "no"),
                ("age", _age(entry.get("age_seconds"))),
            ],
        )
        rows = [
            [
                str(claim["revision"]),
                claim["device"],
                claim["role"] + (" (HA group)" if claim.get("derived") else ""),
                dash(claim.get("ip")),
                claim["standing"],
            ]
            for claim in entry.get("claims", [])
        ]
        print_table(["REVISION", "DEVICE", "ROLE", "IP", "STANDING"], rows, title="claims")


@mac_app.command("claim")
def mac_claim(
    device: Annotated[str, typer.Argument(help="Gateway or chassis the MAC lives behind.")],
    mac: Annotated[str, typer.Argument(help="The MAC address.")],
    network: Annotated[str, typer.Option("--network", help="Network name or id.")],
    tenant: TenantOpt = None,
    role: Annotated[Role, typer.Option(help="master, or slave (an HA standby).")] = Role.master,
    ip: Annotated[str | None, typer.Option("--ip", help="The MAC's IP address.")] = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Record a claim for a device tether does not collect MACs from."""
    body: dict[str, Any] = {"device": device, "network": network, "mac": mac, "role": role.value}
    if tenant:
        body["tenant"] = tenant
    if ip:
        body["ip"] = ip
    with _api(url) as api:
        recorded = api.post("/v1/macs/claims", body)
    if as_json:
        print_json(recorded)
        return
    print_line(
        f"{recorded['device']} claims {recorded['mac']} as {recorded['role']} "
        f"(revision {recorded['revision']})"
    )


@mac_app.command("unclaim")
def mac_unclaim(
    device: Annotated[str, typer.Argument(help="Gateway or chassis.")],
    mac: Annotated[str, typer.Argument(help="The MAC address.")],
    network: Annotated[str, typer.Option("--network", help="Network name or id.")],
    tenant: TenantOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw a device's claim on a MAC."""
    path = f"/v1/macs/claims/{segment(device)}/{segment(network)}/{segment(mac)}"
    with _api(url) as api:
        answer = api.delete(path, {"tenant": tenant})
    if as_json:
        print_json(answer)
        return
    print_line(f"{device} no longer claims {mac}")
