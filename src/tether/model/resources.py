"""The resources users write (northbound model), as validated value types.

Each kind has a stored form (``Network``, ``Port``, ...: id, tenant, status and every
field filled in) and the forms users send (``NetworkCreate``, ``NetworkUpdate``). Field
syntax is checked here (:mod:`tether.model.fields`); rules that span objects (uniqueness,
references, IPs inside subnets) live in :mod:`tether.model.catalog`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from tether.model.fields import (
    parse_cidr,
    parse_ip,
    parse_mac,
    parse_name,
    parse_ovsdb_address,
    parse_tunnel_ip,
    parse_vlan,
    parse_vni,
)

__all__ = [
    "DEFAULT_PRIORITY",
    "KINDS",
    "Chassis",
    "ChassisCreate",
    "ChassisUpdate",
    "DhcpOptions",
    "Gateway",
    "GatewayBinding",
    "GatewayBindingCreate",
    "GatewayCreate",
    "GatewayUpdate",
    "MacClaimCreate",
    "Network",
    "NetworkCreate",
    "NetworkUpdate",
    "Port",
    "PortCreate",
    "PortUpdate",
    "Resource",
    "Route",
    "Router",
    "RouterCreate",
    "RouterInterface",
    "RouterInterfaceCreate",
    "RouterUpdate",
    "Status",
    "Subnet",
    "TransactionMode",
]

Mac = Annotated[str, AfterValidator(parse_mac)]
IP = Annotated[str, AfterValidator(parse_ip)]
TunnelIP = Annotated[str, AfterValidator(parse_tunnel_ip)]
Cidr = Annotated[str, AfterValidator(parse_cidr)]
Vni = Annotated[StrictInt, AfterValidator(parse_vni)]
Vlan = Annotated[StrictInt, AfterValidator(parse_vlan)]
Name = Annotated[str, AfterValidator(parse_name)]
Tenant = Annotated[str, AfterValidator(parse_name)]
OvsdbAddress = Annotated[str, AfterValidator(parse_ovsdb_address)]
TransactionMode = Literal["bind-last", "lock", "state-consistent"]
Ref = Annotated[str, Field(min_length=1, max_length=64)]
"""A reference to another object, by id or by name."""
DEFAULT_PRIORITY = 100
"""A gateway's HA priority unless given (VRRP's default); chassis count as 0."""


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Status(_Value):
    state: Literal["pending", "realized", "error"] = "pending"
    message: str = ""


class DhcpOptions(_Value):
    enabled: bool = True
    dns_servers: list[IP] = Field(default_factory=list, max_length=8)
    lease_time: StrictInt = Field(86_400, ge=60, le=2**31 - 1)
    mtu: StrictInt = Field(1450, ge=576, le=9000)
    domain_name: str = Field("", max_length=253, pattern=r"^([A-Za-z0-9-]{1,63}\.?)*$")


class Subnet(_Value):
    cidr: Cidr
    gateway_ip: IP | None = None
    """The subnet's router address; the first host when not given."""
    dhcp: DhcpOptions = Field(default_factory=DhcpOptions)  # type: ignore[arg-type]


class Route(_Value):
    destination: Cidr
    nexthop: IP


class RouterInterfaceCreate(_Value):
    network: Ref
    ip: IP | None = None
    """Defaults to the gateway IP of the network's first subnet."""
    mac: Mac | None = None


class RouterInterface(_Value):
    network: str
    ip: IP
    mac: Mac


class Resource(_Value):
    """Fields every stored object has."""

    id: str
    tenant: Tenant = "default"
    name: str = ""
    status: Status = Field(default_factory=Status)


class Network(Resource):
    name: Name
    vni: Vni
    subnets: list[Subnet] = Field(default_factory=list)


class NetworkCreate(_Value):
    name: Name
    tenant: Tenant = "default"
    vni: Vni | None = None
    subnets: list[Subnet] = Field(default_factory=list, max_length=16)


class NetworkUpdate(_Value):
    name: Name | None = None
    vni: Vni | None = None
    subnets: list[Subnet] | None = Field(None, max_length=16)


class Port(Resource):
    network: str
    mac: Mac
    ips: list[IP] = Field(default_factory=list)
    chassis: str | None = None


class PortCreate(_Value):
    network: Ref
    name: Name | None = None
    tenant: Tenant | None = None
    """Defaults to the network's tenant; must equal it when given."""
    mac: Mac | None = None
    ips: list[IP] | None = Field(None, max_length=16)
    """``None`` allocates one address from the network's first subnet; ``[]`` none."""
    chassis: Ref | None = None


class PortUpdate(_Value):
    name: Name | None = None
    mac: Mac | None = None
    ips: list[IP] | None = Field(None, max_length=16)
    chassis: Ref | None = None
    unbind: bool = False
    """True removes the chassis binding (``chassis`` must then be absent)."""


class Router(Resource):
    name: Name
    interfaces: list[RouterInterface] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)


class RouterCreate(_Value):
    name: Name
    tenant: Tenant = "default"
    interfaces: list[RouterInterfaceCreate] = Field(default_factory=list, max_length=64)
    routes: list[Route] = Field(default_factory=list, max_length=256)


class RouterUpdate(_Value):
    name: Name | None = None
    interfaces: list[RouterInterfaceCreate] | None = Field(None, max_length=64)
    routes: list[Route] | None = Field(None, max_length=256)


class Chassis(Resource):
    name: Name
    tunnel_ip: TunnelIP


class ChassisCreate(_Value):
    name: Name
    tenant: Tenant = "default"
    tunnel_ip: TunnelIP


class ChassisUpdate(_Value):
    tunnel_ip: TunnelIP | None = None


class Gateway(Resource):
    name: Name
    ovsdb: OvsdbAddress
    physical_switch: Name
    tunnel_ip: TunnelIP | None = None
    """None until learned from the switch's ``Physical_Switch.tunnel_ips``."""
    mode: TransactionMode = "bind-last"
    max_rows_per_txn: StrictInt = Field(1000, ge=1, le=1_000_000)
    ha_group: Name | None = None
    """The VRRP or MLAG group the switch belongs to: a MAC one member reports makes the
    other members its standbys (slave claims)."""
    priority: StrictInt = Field(DEFAULT_PRIORITY, ge=0, le=255)
    """HA priority: when no device claims a MAC as master, the highest priority is chosen."""


class GatewayCreate(_Value):
    name: Name
    tenant: Tenant = "default"
    ovsdb: OvsdbAddress
    physical_switch: Name | None = None
    """The ``Physical_Switch`` row's name; defaults to the gateway's name."""
    tunnel_ip: TunnelIP | None = None
    """The switch's VXLAN source address; learned from the switch when not given."""
    mode: TransactionMode = "bind-last"
    max_rows_per_txn: StrictInt = Field(1000, ge=1, le=1_000_000)
    ha_group: Name | None = None
    priority: StrictInt = Field(DEFAULT_PRIORITY, ge=0, le=255)


class GatewayUpdate(_Value):
    ovsdb: OvsdbAddress | None = None
    physical_switch: Name | None = None
    tunnel_ip: TunnelIP | None = None
    mode: TransactionMode | None = None
    max_rows_per_txn: StrictInt | None = Field(None, ge=1, le=1_000_000)
    ha_group: Name | None = None
    leave_ha_group: bool = False
    """Take the gateway out of its HA group."""
    priority: StrictInt | None = Field(None, ge=0, le=255)


class GatewayBinding(Resource):
    gateway: str
    port: str
    vlan: Vlan
    network: str


class GatewayBindingCreate(_Value):
    port: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
    """The physical port's name (printable ASCII, no spaces), as in ``Physical_Port``."""
    vlan: Vlan
    network: Ref


KINDS: dict[str, type[Resource]] = {
    "networks": Network,
    "ports": Port,
    "routers": Router,
    "chassis": Chassis,
    "gateways": Gateway,
    "bindings": GatewayBinding,
}
"""Kind name (as in the store key and the URL) to stored type."""


class MacClaimCreate(_Value):
    """A claim reported through the API, for a device tether does not collect from itself
    (a switch whose inventory arrives another way, an operator's static entry)."""

    device: Name
    """The gateway or chassis the MAC lives behind."""
    network: Ref
    """Network id or name."""
    tenant: Tenant | None = None
    """Tenant of the network's name, when names repeat across tenants."""
    mac: Mac
    role: Literal["master", "slave"] = "master"
    ip: IP | None = None
