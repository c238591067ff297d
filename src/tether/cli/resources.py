"""The resource commands of ``tether``: networks, ports, chassis, gateways, routers, status.

Each command translates its flags into one REST call (or a read and a write, for the router
interface and route edits) and prints the answer: a table by default, the JSON with
``--json``. The API decides everything; its errors are printed as one line on stderr with
exit code 1. Every command takes ``--url`` (or ``TETHER_URL``) and ``--json`` itself.
"""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer

from tether.cli.client import DEFAULT_URL, Client, segment
from tether.cli.macs import mac_app
from tether.cli.options import JsonOpt, UrlOpt
from tether.cli.options import api as _api
from tether.cli.output import (
    Cell,
    by_name,
    dash,
    print_details,
    print_json,
    print_line,
    print_table,
    status_cell,
)

__all__ = ["register"]

Obj = Mapping[str, Any]

# -- shared options ------------------------------------------------------------------------

TenantRefOpt = Annotated[
    str | None,
    typer.Option("--tenant", help="Tenant of REF, when that name exists in several tenants."),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Also remove or detach what still depends on it.")
]


def _ref_path(kind: str, ref: str) -> str:
    return f"/v1/{kind}/{segment(ref)}"


def _some(**fields: Any) -> dict[str, Any]:
    """The fields that were given (not None)."""
    return {key: value for key, value in fields.items() if value is not None}


def _show_deleted(answer: Obj, noun: str, as_json: bool) -> None:
    if as_json:
        print_json(answer)
        return
    obj = answer["deleted"]
    print_line(f"deleted {noun} {obj.get('name') or obj['id']} ({obj['id']})")


def _network_names(api: Client) -> dict[str, str]:
    """Network id -> name, for showing references by name."""
    return {net["id"]: net["name"] for net in api.list_all("/v1/networks")}


# -- networks ------------------------------------------------------------------------------

network_app = typer.Typer(help="Virtual networks (VXLAN segments) and their subnets.")


def _subnets(
    cidrs: Sequence[str], gateway_ip: str | None, dns: Sequence[str]
) -> list[dict[str, Any]]:
    subnets: list[dict[str, Any]] = [{"cidr": cidr} for cidr in cidrs]
    if (gateway_ip or dns) and not subnets:
        raise typer.BadParameter("--gateway-ip and --dns apply to a --subnet; give one")
    if gateway_ip:
        subnets[0]["gateway_ip"] = gateway_ip
    if dns:
        subnets[0]["dhcp"] = {"dns_servers": list(dns)}
    return subnets


def _subnet_text(subnet: Obj) -> str:
    text = f"{subnet['cidr']} gateway {subnet.get('gateway_ip') or '-'}"
    dns = (subnet.get("dhcp") or {}).get("dns_servers") or []
    return f"{text} dns {', '.join(dns)}" if dns else text


def _show_network(network: Obj, as_json: bool) -> None:
    if as_json:
        print_json(network)
        return
    subnets = "\n".join(_subnet_text(s) for s in network.get("subnets", [])) or "-"
    print_details(
        f"network {network['name']}",
        [
            ("id", network["id"]),
            ("tenant", network["tenant"]),
            ("vni", str(network["vni"])),
            ("subnets", subnets),
            ("status", status_cell(network)),
        ],
    )


@network_app.command("create")
def network_create(
    name: Annotated[str, typer.Argument(help="Name of the network, unique in its tenant.")],
    vni: Annotated[
        int | None,
        typer.Option(help="VXLAN network identifier; the API picks a free one if absent."),
    ] = None,
    subnet: Annotated[
        list[str] | None,
        typer.Option("--subnet", help="Subnet CIDR, e.g. 10.0.1.0/24; repeat for several."),
    ] = None,
    gateway_ip: Annotated[
        str | None,
        typer.Option(
            "--gateway-ip", help="Router address of the first subnet (default: its first host)."
        ),
    ] = None,
    dns: Annotated[
        list[str] | None,
        typer.Option("--dns", help="DNS server DHCP offers on the first subnet; repeatable."),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant owning the network (default: default).")
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Create a network."""
    body = _some(name=name, vni=vni, tenant=tenant)
    body["subnets"] = _subnets(subnet or [], gateway_ip, dns or [])
    with _api(url) as api:
        network = api.post("/v1/networks", body)
    _show_network(network, as_json)


@network_app.command("list")
def network_list(
    tenant: Annotated[str | None, typer.Option(help="Only the networks of this tenant.")] = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """List networks."""
    with _api(url) as api:
        networks = api.list_all("/v1/networks", {"tenant": tenant})
    if as_json:
        print_json(networks)
        return
    rows = [
        [
            n["name"],
            n["tenant"],
            str(n["vni"]),
            dash([s["cidr"] for s in n.get("subnets", [])]),
            status_cell(n),
            n["id"],
        ]
        for n in by_name(networks)
    ]
    print_table(["NAME", "TENANT", "VNI", "SUBNETS", "STATUS", "ID"], rows)


@network_app.command("show")
def network_show(
    ref: Annotated[str, typer.Argument(help="Network name or id.")],
    tenant: TenantRefOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Show a network."""
    with _api(url) as api:
        network = api.get(_ref_path("networks", ref), {"tenant": tenant})
    _show_network(network, as_json)


@network_app.command("delete")
def network_delete(
    ref: Annotated[str, typer.Argument(help="Network name or id.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Also delete its ports and bindings and detach routers from it."
        ),
    ] = False,
    tenant: TenantRefOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Delete a network (refused while ports, bindings or routers use it, unless --force)."""
    with _api(url) as api:
        answer = api.delete(_ref_path("networks", ref), {"force": force or None, "tenant": tenant})
    _show_deleted(answer, "network", as_json)


# -- ports ---------------------------------------------------------------------------------

port_app = typer.Typer(help="Ports: a VM or container interface (MAC, IPs) on a network.")


def _port_pairs(port: Obj, network_name: str) -> list[tuple[str, Cell]]:
    return [
        ("id", port["id"]),
        ("name", dash(port.get("name"))),
        ("tenant", port["tenant"]),
        ("network", f"{network_name} ({port['network']})"),
        ("mac", port["mac"]),
        ("ips", dash(port.get("ips"))),
        ("chassis", dash(port.get("chassis"))),
        ("status", status_cell(port)),
    ]


def _show_port(api: Client, port: Obj, as_json: bool) -> None:
    if as_json:
        print_json(port)
        return
    network = api.get(_ref_path("networks", port["network"]))
    label = port.get("name") or port["id"]
    print_details(f"port {label}", _port_pairs(port, network["name"]))


@port_app.command("create")
def port_create(
    network: Annotated[str, typer.Argument(help="Network name or id to attach the port to.")],
    mac: Annotated[
        str | None, typer.Option(help="Unicast MAC address; the API generates one if absent.")
    ] = None,
    ip: Annotated[
        list[str] | None,
        typer.Option(
            "--ip", help="IP in the network's subnets; repeatable (default: the API allocates one)."
        ),
    ] = None,
    no_ip: Annotated[bool, typer.Option("--no-ip", help="Create the port without IPs.")] = False,
    name: Annotated[
        str | None, typer.Option(help="Name of the port, unique in its tenant.")
    ] = None,
    chassis: Annotated[
        str | None, typer.Option(help="Chassis (hypervisor) the port is bound to.")
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Create a port."""
    if ip and no_ip:
        raise typer.BadParameter("give --ip or --no-ip, not both")
    ips: list[str] | None = [] if no_ip else (ip or None)
    body = _some(network=network, mac=mac, ips=ips, name=name, chassis=chassis)
    with _api(url) as api:
        _show_port(api, api.post("/v1/ports", body), as_json)


@port_app.command("list")
def port_list(
    network: Annotated[str | None, typer.Option(help="Only ports of this network.")] = None,
    chassis: Annotated[
        str | None, typer.Option(help="Only ports bound to this chassis (by name).")
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """List ports."""
    with _api(url) as api:
        ports = api.list_all("/v1/ports", {"network": network, "chassis": chassis})
        names = {} if as_json else _network_names(api)
    if as_json:
        print_json(ports)
        return
    rows = [
        [
            dash(p.get("name")),
            names.get(p["network"], p["network"]),
            p["mac"],
            dash(p.get("ips")),
            dash(p.get("chassis")),
            status_cell(p),
            p["id"],
        ]
        for p in by_name(ports)
    ]
    print_table(["NAME", "NETWORK", "MAC", "IPS", "CHASSIS", "STATUS", "ID"], rows)


@port_app.command("show")
def port_show(
    ref: Annotated[str, typer.Argument(help="Port name or id.")],
    tenant: TenantRefOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Show a port."""
    with _api(url) as api:
        _show_port(api, api.get(_ref_path("ports", ref), {"tenant": tenant}), as_json)


def _patch_port(url: str, ref: str, tenant: str | None, body: Obj, as_json: bool) -> None:
    with _api(url) as api:
        _show_port(api, api.patch(_ref_path("ports", ref), body, {"tenant": tenant}), as_json)


@port_app.command("bind")
def port_bind(
    ref: Annotated[str, typer.Argument(help="Port name or id.")],
    chassis: Annotated[str, typer.Option(help="Chassis name or id to bind the port to.")],
    tenant: TenantRefOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Bind a port to a chassis (where its VM runs)."""
    _patch_port(url, ref, tenant, {"chassis": chassis}, as_json)


@port_app.command("unbind")
def port_unbind(
    ref: Annotated[str, typer.Argument(help="Port name or id.")],
    tenant: TenantRefOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Remove a port's chassis binding."""
    _patch_port(url, ref, tenant, {"unbind": True}, as_json)


@port_app.command("delete")
def port_delete(
    ref: Annotated[str, typer.Argument(help="Port name or id.")],
    tenant: TenantRefOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Delete a port."""
    with _api(url) as api:
        answer = api.delete(_ref_path("ports", ref), {"tenant": tenant})
    _show_deleted(answer, "port", as_json)


# -- chassis -------------------------------------------------------------------------------

chassis_app = typer.Typer(help="Chassis: hypervisors running Open vSwitch, by tunnel IP.")
TunnelIpOpt = Annotated[
    str, typer.Option("--tunnel-ip", help="Tunnel endpoint IP of the chassis (VXLAN source).")
]


def _show_chassis(chassis: Obj, as_json: bool) -> None:
    if as_json:
        print_json(chassis)
        return
    print_details(
        f"chassis {chassis['name']}",
        [
            ("id", chassis["id"]),
            ("tunnel ip", chassis["tunnel_ip"]),
            ("status", status_cell(chassis)),
        ],
    )


@chassis_app.command("add")
def chassis_add(
    name: Annotated[str, typer.Argument(help="Name of the chassis, unique.")],
    tunnel_ip: TunnelIpOpt,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Add a chassis."""
    with _api(url) as api:
        chassis = api.post("/v1/chassis", {"name": name, "tunnel_ip": tunnel_ip})
    _show_chassis(chassis, as_json)


@chassis_app.command("set")
def chassis_set(
    ref: Annotated[str, typer.Argument(help="Chassis name or id.")],
    tunnel_ip: TunnelIpOpt,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Change a chassis's tunnel IP."""
    with _api(url) as api:
        chassis = api.patch(_ref_path("chassis", ref), {"tunnel_ip": tunnel_ip})
    _show_chassis(chassis, as_json)


@chassis_app.command("list")
def chassis_list(url: UrlOpt = DEFAULT_URL, as_json: JsonOpt = False) -> None:
    """List chassis."""
    with _api(url) as api:
        everything = api.list_all("/v1/chassis")
    if as_json:
        print_json(everything)
        return
    rows = [[c["name"], c["tunnel_ip"], status_cell(c), c["id"]] for c in by_name(everything)]
    print_table(["NAME", "TUNNEL IP", "STATUS", "ID"], rows)


@chassis_app.command("show")
def chassis_show(
    ref: Annotated[str, typer.Argument(help="Chassis name or id.")],
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Show a chassis."""
    with _api(url) as api:
        chassis = api.get(_ref_path("chassis", ref))
    _show_chassis(chassis, as_json)


@chassis_app.command("delete")
def chassis_delete(
    ref: Annotated[str, typer.Argument(help="Chassis name or id.")],
    force: Annotated[
        bool, typer.Option("--force", help="Also unbind the ports bound to it.")
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Delete a chassis (refused while ports are bound to it, unless --force)."""
    with _api(url) as api:
        answer = api.delete(_ref_path("chassis", ref), {"force": force or None})
    _show_deleted(answer, "chassis", as_json)


# -- gateways ------------------------------------------------------------------------------

gateway_app = typer.Typer(help="Gateways: hardware VTEP switches managed over OVSDB.")


class Mode(StrEnum):
    """How the controller writes to the switch's OVSDB."""

    BIND_LAST = "bind-last"
    LOCK = "lock"
    STATE_CONSISTENT = "state-consistent"


def _binding_rows(bindings: Sequence[Obj], names: Mapping[str, str]) -> list[list[Cell]]:
    ordered = sorted(bindings, key=lambda b: (str(b["port"]), int(b["vlan"])))
    return [
        [b["port"], str(b["vlan"]), names.get(b["network"], b["network"]), status_cell(b)]
        for b in ordered
    ]


def _gateway_pairs(gateway: Obj) -> list[tuple[str, Cell]]:
    return [
        ("id", gateway["id"]),
        ("ovsdb", gateway["ovsdb"]),
        ("physical switch", gateway["physical_switch"]),
        ("tunnel ip", gateway["tunnel_ip"]),
        ("mode", gateway["mode"]),
        ("max rows per txn", str(gateway["max_rows_per_txn"])),
        ("ha group", gateway.get("ha_group") or "-"),
        ("priority", str(gateway.get("priority", "-"))),
        ("status", status_cell(gateway)),
        *_runtime_pairs(gateway.get("runtime")),
    ]


def _runtime_pairs(runtime: Obj | None) -> list[tuple[str, Cell]]:
    """What the gateway's agent last reported: connection, generations, rows, last error."""
    if not runtime:
        return [("connection", "no report yet")]
    rows = runtime.get("rows") or {}
    counts = ", ".join(f"{table} {n}" for table, n in sorted(rows.items()) if n) or "-"
    return [
        ("connection", runtime["connection"]),
        (
            "generation",
            f"desired {runtime['desired_generation']}, realized {runtime['realized_generation']}",
        ),
        ("stage", runtime.get("stage") or "-"),
        ("bound ports", ", ".join(runtime.get("bound_ports") or []) or "-"),
        ("rows", counts),
        ("transactions", str(runtime.get("transactions", 0))),
        *_gap_pairs(runtime),
        ("last error", runtime.get("last_error") or "-"),
    ]


def _gap_pairs(runtime: Obj) -> list[tuple[str, Cell]]:
    """bind-last's update outage, when the agent has measured one."""
    if runtime.get("max_update_gap_ms") is None:
        return []
    gap = f"last {runtime['update_gap_ms']} ms, max {runtime['max_update_gap_ms']} ms"
    return [("update gap", gap)]


def _show_gateway(gateway: Obj, as_json: bool) -> None:
    if as_json:
        print_json(gateway)
        return
    print_details(f"gateway {gateway['name']}", _gateway_pairs(gateway))


HaGroupOpt = Annotated[
    str | None,
    typer.Option(
        "--ha-group",
        help="VRRP or MLAG group of the switch: the other members stand by for its MACs.",
    ),
]
PriorityOpt = Annotated[
    int | None,
    typer.Option(
        help="HA priority 0-255 (default 100): chooses the location when no device claims "
        "a MAC as master."
    ),
]
ConvertSchemaOpt = Annotated[
    bool,
    typer.Option(
        "--convert-schema",
        help="With --mode state-consistent: add Logical_Switch.state_consistent to the "
        "switch's schema by online conversion if it lacks it.",
    ),
]


@gateway_app.command("add")
def gateway_add(
    name: Annotated[str, typer.Argument(help="Name of the gateway, unique.")],
    ovsdb: Annotated[
        str, typer.Option(help="OVSDB address of the switch: tcp:HOST:PORT, ssl:... or unix:PATH.")
    ],
    tunnel_ip: Annotated[
        str | None,
        typer.Option("--tunnel-ip", help="Tunnel endpoint IP of the switch (VXLAN source)."),
    ] = None,
    physical_switch: Annotated[
        str | None,
        typer.Option(
            help="Name of the switch's Physical_Switch row (default: the gateway's name)."
        ),
    ] = None,
    mode: Annotated[
        Mode | None, typer.Option(help="How OVSDB writes are transacted (default: bind-last).")
    ] = None,
    max_rows_per_txn: Annotated[
        int | None, typer.Option(help="Most rows written in one OVSDB transaction (default: 1000).")
    ] = None,
    ha_group: HaGroupOpt = None,
    priority: PriorityOpt = None,
    convert_schema: ConvertSchemaOpt = False,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Add a gateway (a hardware VTEP switch)."""
    body = _some(
        name=name,
        ovsdb=ovsdb,
        tunnel_ip=tunnel_ip,
        physical_switch=physical_switch,
        mode=mode.value if mode else None,
        max_rows_per_txn=max_rows_per_txn,
        ha_group=ha_group,
        priority=priority,
    )
    params = {"convert_schema": "true"} if convert_schema else None
    with _api(url) as api:
        gateway = api.post("/v1/gateways", body, params)
    _show_gateway(gateway, as_json)


@gateway_app.command("set")
def gateway_set(
    ref: Annotated[str, typer.Argument(help="Gateway name or id.")],
    ovsdb: Annotated[str | None, typer.Option(help="New OVSDB address of the switch.")] = None,
    tunnel_ip: Annotated[str | None, typer.Option("--tunnel-ip", help="New tunnel IP.")] = None,
    mode: Annotated[Mode | None, typer.Option(help="New transaction mode.")] = None,
    max_rows_per_txn: Annotated[
        int | None, typer.Option(help="Most rows written in one OVSDB transaction.")
    ] = None,
    ha_group: HaGroupOpt = None,
    leave_ha_group: Annotated[
        bool, typer.Option("--no-ha-group", help="Take the gateway out of its HA group.")
    ] = False,
    priority: PriorityOpt = None,
    convert_schema: ConvertSchemaOpt = False,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Change a gateway's settings."""
    body = _some(
        ovsdb=ovsdb,
        tunnel_ip=tunnel_ip,
        mode=mode.value if mode else None,
        max_rows_per_txn=max_rows_per_txn,
        ha_group=ha_group,
        leave_ha_group=leave_ha_group or None,
        priority=priority,
    )
    params = {"convert_schema": "true"} if convert_schema else None
    with _api(url) as api:
        gateway = api.patch(_ref_path("gateways", ref), body, params)
    _show_gateway(gateway, as_json)


@gateway_app.command("list")
def gateway_list(url: UrlOpt = DEFAULT_URL, as_json: JsonOpt = False) -> None:
    """List gateways."""
    with _api(url) as api:
        gateways = api.list_all("/v1/gateways")
    if as_json:
        print_json(gateways)
        return
    rows = [
        [g["name"], g["ovsdb"], g["physical_switch"], g["tunnel_ip"], g["mode"], status_cell(g)]
        for g in by_name(gateways)
    ]
    print_table(["NAME", "OVSDB", "PHYSICAL SWITCH", "TUNNEL IP", "MODE", "STATUS"], rows)


@gateway_app.command("show")
def gateway_show(
    ref: Annotated[str, typer.Argument(help="Gateway name or id.")],
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Show a gateway and its VLAN bindings."""
    with _api(url) as api:
        gateway = api.get(_ref_path("gateways", ref))
        bindings = api.list_all(_ref_path("gateways", ref) + "/bindings")
        names = {} if as_json else _network_names(api)
    if as_json:
        print_json({**gateway, "bindings": bindings})
        return
    _show_gateway(gateway, as_json)
    title = f"bindings of {gateway['name']}"
    if bindings:
        print_table(
            ["PORT", "VLAN", "NETWORK", "STATUS"], _binding_rows(bindings, names), title=title
        )
    else:
        print_line(f"{title}: none")


@gateway_app.command("delete")
def gateway_delete(
    ref: Annotated[str, typer.Argument(help="Gateway name or id.")],
    force: Annotated[bool, typer.Option("--force", help="Also delete its VLAN bindings.")] = False,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Delete a gateway (refused while it has bindings, unless --force)."""
    with _api(url) as api:
        answer = api.delete(_ref_path("gateways", ref), {"force": force or None})
    _show_deleted(answer, "gateway", as_json)


GatewayArg = Annotated[str, typer.Argument(help="Gateway name or id.")]
SwitchPortArg = Annotated[str, typer.Argument(help="Physical port of the switch, e.g. eth1.")]


@gateway_app.command("bind")
def gateway_bind(
    gateway: GatewayArg,
    port: SwitchPortArg,
    vlan: Annotated[int, typer.Option(help="VLAN id on that port (0-4095).")],
    network: Annotated[str, typer.Option(help="Network name or id the VLAN joins.")],
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Bind a switch port and VLAN to a network."""
    body = {"port": port, "vlan": vlan, "network": network}
    with _api(url) as api:
        binding = api.post(_ref_path("gateways", gateway) + "/bindings", body)
        network_name = "" if as_json else api.get(_ref_path("networks", binding["network"]))["name"]
    if as_json:
        print_json(binding)
        return
    print_line(
        f"bound {binding['gateway']} {binding['port']} VLAN {binding['vlan']} "
        f"to network {network_name} ({binding['id']})"
    )


@gateway_app.command("unbind")
def gateway_unbind(
    gateway: GatewayArg,
    port: SwitchPortArg,
    vlan: Annotated[int, typer.Option(help="VLAN id of the binding.")],
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Remove the binding of a switch port and VLAN."""
    path = f"{_ref_path('gateways', gateway)}/bindings/{segment(port)}/{vlan}"
    with _api(url) as api:
        answer = api.delete(path)
    if as_json:
        print_json(answer)
        return
    b = answer["deleted"]
    print_line(f"unbound {b['gateway']} {b['port']} VLAN {b['vlan']} ({b['id']})")


# -- routers -------------------------------------------------------------------------------

router_app = typer.Typer(help="Routers: connect a tenant's networks and hold static routes.")
RouterArg = Annotated[str, typer.Argument(help="Router name or id.")]


def _split(text: str, flag: str, *, need_value: bool) -> tuple[str, str | None]:
    key, sep, value = text.partition("=")
    if not key or (need_value and not value) or (sep and not value):
        form = "DEST=NEXTHOP" if need_value else "NETWORK[=IP]"
        raise typer.BadParameter(f"{text!r} is not {form}", param_hint=flag)
    return key, value or None


def _interface_specs(texts: Sequence[str]) -> list[dict[str, Any]]:
    specs = []
    for text in texts:
        network, ip = _split(text, "--interface", need_value=False)
        specs.append(_some(network=network, ip=ip))
    return specs


def _route_specs(texts: Sequence[str]) -> list[dict[str, Any]]:
    routes = []
    for text in texts:
        destination, nexthop = _split(text, "--route", need_value=True)
        routes.append({"destination": destination, "nexthop": nexthop})
    return routes


def _show_router(api: Client, router: Obj, as_json: bool) -> None:
    if as_json:
        print_json(router)
        return
    names = _network_names(api)
    pairs: list[tuple[str, Cell]] = [
        ("id", router["id"]),
        ("tenant", router["tenant"]),
        ("status", status_cell(router)),
    ]
    print_details(f"router {router['name']}", pairs)
    interfaces = sorted(
        router.get("interfaces", []), key=lambda i: names.get(i["network"], i["network"])
    )
    rows = [[names.get(i["network"], i["network"]), i["ip"], i["mac"]] for i in interfaces]
    print_table(["NETWORK", "IP", "MAC"], rows, title="interfaces")
    routes = sorted(router.get("routes", []), key=lambda r: str(r["destination"]))
    print_table(
        ["DESTINATION", "NEXTHOP"],
        [[r["destination"], r["nexthop"]] for r in routes],
        title="routes",
    )


@router_app.command("create")
def router_create(
    name: Annotated[str, typer.Argument(help="Name of the router, unique in its tenant.")],
    interface: Annotated[
        list[str] | None,
        typer.Option(
            "--interface",
            help="NETWORK or NETWORK=IP: join a network (default IP: its first subnet's gateway)"
            "; repeatable.",
        ),
    ] = None,
    route: Annotated[
        list[str] | None,
        typer.Option("--route", help="DEST=NEXTHOP static route, e.g. 0.0.0.0/0=10.0.1.254."),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant owning the router (default: default).")
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Create a router."""
    body = _some(name=name, tenant=tenant)
    body["interfaces"] = _interface_specs(interface or [])
    body["routes"] = _route_specs(route or [])
    with _api(url) as api:
        _show_router(api, api.post("/v1/routers", body), as_json)


@router_app.command("list")
def router_list(url: UrlOpt = DEFAULT_URL, as_json: JsonOpt = False) -> None:
    """List routers."""
    with _api(url) as api:
        routers = api.list_all("/v1/routers")
        names = {} if as_json else _network_names(api)
    if as_json:
        print_json(routers)
        return
    rows = [
        [
            r["name"],
            r["tenant"],
            dash(sorted(names.get(i["network"], i["network"]) for i in r.get("interfaces", []))),
            str(len(r.get("routes", []))),
            status_cell(r),
            r["id"],
        ]
        for r in by_name(routers)
    ]
    print_table(["NAME", "TENANT", "NETWORKS", "ROUTES", "STATUS", "ID"], rows)


@router_app.command("show")
def router_show(
    ref: RouterArg, tenant: TenantRefOpt = None, url: UrlOpt = DEFAULT_URL, as_json: JsonOpt = False
) -> None:
    """Show a router with its interfaces and routes."""
    with _api(url) as api:
        _show_router(api, api.get(_ref_path("routers", ref), {"tenant": tenant}), as_json)


def _router_path(api: Client, ref: str, tenant: str | None, *tail: str) -> str:
    """The router's URL (resolved to its id) with ``tail`` segments appended."""
    router = api.get(_ref_path("routers", ref), {"tenant": tenant})
    return "/".join([_ref_path("routers", router["id"]), *(segment(part) for part in tail)])


@router_app.command("add-interface")
def router_add_interface(
    router: RouterArg,
    network: Annotated[str, typer.Argument(help="Network name or id to join.")],
    ip: Annotated[
        str | None, typer.Option(help="Router's IP there (default: the first subnet's gateway IP).")
    ] = None,
    tenant: TenantRefOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Connect a router to a network (one atomic change on the controller)."""
    with _api(url) as api:
        path = _router_path(api, router, tenant, "interfaces")
        _show_router(api, api.post(path, _some(network=network, ip=ip)), as_json)


@router_app.command("remove-interface")
def router_remove_interface(
    router: RouterArg,
    network: Annotated[str, typer.Argument(help="Network name or id to leave.")],
    tenant: TenantRefOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Disconnect a router from a network."""
    with _api(url) as api:
        path = _router_path(api, router, tenant, "interfaces", network)
        _show_router(api, api.delete(path), as_json)


@router_app.command("add-route")
def router_add_route(
    router: RouterArg,
    destination: Annotated[str, typer.Argument(help="Destination prefix, e.g. 0.0.0.0/0.")],
    nexthop: Annotated[str, typer.Argument(help="Next-hop IP on one of the router's networks.")],
    tenant: TenantRefOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Add a static route to a router (one atomic change on the controller)."""
    with _api(url) as api:
        path = _router_path(api, router, tenant, "routes")
        body = {"destination": destination, "nexthop": nexthop}
        _show_router(api, api.post(path, body), as_json)


@router_app.command("remove-route")
def router_remove_route(
    router: RouterArg,
    destination: Annotated[str, typer.Argument(help="Destination prefix of the route.")],
    tenant: TenantRefOpt = None,
    url: UrlOpt = DEFAULT_URL,
    as_json: JsonOpt = False,
) -> None:
    """Remove a static route from a router."""
    with _api(url) as api:
        path = _router_path(api, router, tenant, "routes") + "/" + destination
        _show_router(api, api.delete(path), as_json)


@router_app.command("delete")
def router_delete(
    ref: RouterArg, tenant: TenantRefOpt = None, url: UrlOpt = DEFAULT_URL, as_json: JsonOpt = False
) -> None:
    """Delete a router."""
    with _api(url) as api:
        answer = api.delete(_ref_path("routers", ref), {"tenant": tenant})
    _show_deleted(answer, "router", as_json)


# -- status --------------------------------------------------------------------------------


def status(url: UrlOpt = DEFAULT_URL, as_json: JsonOpt = False) -> None:
    """Show the controller's store, object counts and objects in error."""
    with _api(url) as api:
        answer = api.get("/v1/status")
    if as_json:
        print_json(answer)
        return
    store = answer.get("store", {})
    print_details(
        f"tether {answer.get('version', '?')}",
        [
            ("controller", url),
            ("store", str(store.get("backend", "?"))),
            ("store revision", str(store.get("revision", "?"))),
            ("model revision", str(answer.get("model_revision", "?"))),
        ],
    )
    counts = sorted(answer.get("objects", {}).items())
    print_table(["KIND", "COUNT"], [[kind, str(n)] for kind, n in counts], title="objects")
    _print_gateways(answer.get("gateways", []))
    _print_macs(answer.get("macs"))
    _print_errors(answer.get("errors", []))


def _print_gateways(gateways: Sequence[Obj]) -> None:
    if not gateways:
        return
    rows = [
        [
            g["gateway"],
            g["mode"],
            g["connection"],
            f"{g['realized_generation']}/{g['desired_generation']}",
            ", ".join(g.get("bound_ports") or []) or "-",
            str((g.get("rows") or {}).get("Ucast_Macs_Remote", 0)),
            g.get("last_error") or "-",
        ]
        for g in gateways
    ]
    header = ["GATEWAY", "MODE", "CONNECTION", "REALIZED/DESIRED", "BOUND PORTS", "REMOTE MACS"]
    print_table([*header, "LAST ERROR"], rows, title="gateways")


def _print_macs(macs: Obj | None) -> None:
    if not macs:
        return
    print_line(
        f"MAC inventory: {macs['located']} located, {macs['claims']} claims, "
        f"{macs['moves']} moves, {macs['conflicts']} conflicts, {macs['damped']} damped, "
        f"{macs['pending']} waiting (claims read to revision {macs['revision']})"
    )


def _print_errors(errors: Sequence[Obj]) -> None:
    if not errors:
        print_line("objects in error: none")
        return
    rows = [[e["kind"], dash(e.get("name")), e["id"], e.get("message", "")] for e in errors]
    print_table(["KIND", "NAME", "ID", "MESSAGE"], rows, title="objects in error")


# -- registration --------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add the resource command groups and ``status`` to the root ``tether`` app."""
    app.add_typer(network_app, name="network", no_args_is_help=True)
    app.add_typer(port_app, name="port", no_args_is_help=True)
    app.add_typer(chassis_app, name="chassis", no_args_is_help=True)
    app.add_typer(gateway_app, name="gateway", no_args_is_help=True)
    app.add_typer(router_app, name="router", no_args_is_help=True)
    app.add_typer(mac_app, name="mac", no_args_is_help=True)
    app.command("status")(status)
