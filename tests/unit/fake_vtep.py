"""A small in-memory ``hardware_vtep`` database for unit tests of the VTEP planner.

It applies the RFC 7047 operations the encoder produces (insert with ``uuid-name``, update,
delete, mutate of the map columns ``vlan_bindings`` and ``other_config``, ``assert`` of a
lock) atomically, enforces the rules a real ``ovsdb-server`` enforces that the planner must
respect (references must exist, a referenced root row cannot be deleted, the locator index
is unique) and garbage-collects unreferenced ``Physical_Locator`` / ``Physical_Locator_Set``
rows. The integration tests run the same plans against a real ``ovsdb-server``.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

Row = dict[str, Any]


class FakeVtepError(Exception):
    pass


class FakeVtepDb:
    def __init__(self, switch: str = "tor1", ports: tuple[str, ...] = ("eth1", "eth2")) -> None:
        self._ids = itertools.count(1)
        self.tables: dict[str, dict[str, Row]] = {
            name: {}
            for name in (
                "Physical_Switch",
                "Physical_Port",
                "Logical_Switch",
                "Ucast_Macs_Local",
                "Ucast_Macs_Remote",
                "Mcast_Macs_Local",
                "Mcast_Macs_Remote",
                "Physical_Locator",
                "Physical_Locator_Set",
            )
        }
        port_ids = []
        for port in ports:
            uid = self._uuid()
            self.tables["Physical_Port"][uid] = {"name": port, "vlan_bindings": ["map", []]}
            port_ids.append(["uuid", uid])
        self.tables["Physical_Switch"][self._uuid()] = {
            "name": switch,
            "ports": ["set", port_ids],
            "tunnel_ips": ["set", ["192.0.2.21"]],
        }
        self.locks: set[str] = set()
        self.transactions = 0

    def _uuid(self) -> str:
        return f"00000000-0000-0000-0000-{next(self._ids):012d}"

    def transact(self, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        saved = copy.deepcopy(self.tables)
        try:
            results = self._apply(ops)
            self._collect_garbage()
            self._check_references()
        except FakeVtepError:
            self.tables = saved
            raise
        self.transactions += 1
        return results

    def _apply(self, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        named: dict[str, str] = {}
        results = []
        for op in ops:
            kind = op["op"]
            if kind == "assert":
                if op["lock"] not in self.locks:
                    raise FakeVtepError(f"not owner of lock {op['lock']}")
                results.append({})
            elif kind == "insert":
                uid = self._uuid()
                if "uuid-name" in op:
                    named[op["uuid-name"]] = uid
                self.tables[op["table"]][uid] = self._resolve(op["row"], named)
                results.append({"uuid": ["uuid", uid]})
            else:
                matches = self._select(op["table"], op["where"])
                for uid in matches:
                    self._change(op, uid, named)
                results.append({"count": len(matches)})
        return results

    def _change(self, op: dict[str, Any], uid: str, named: dict[str, str]) -> None:
        table = self.tables[op["table"]]
        if op["op"] == "delete":
            del table[uid]
        elif op["op"] == "update":
            table[uid].update(self._resolve(op["row"], named))
        elif op["op"] == "mutate":  # of map columns: delete keys, insert pairs
            for column, mutator, value in op["mutations"]:
                assert column in ("vlan_bindings", "other_config"), column
                pairs = dict((k, v) for k, v in table[uid].get(column, ["map", []])[1])
                if mutator == "delete":
                    assert value[0] == "set", "delete by keys only"
                    for key in value[1]:
                        pairs.pop(key, None)
                else:
                    assert mutator == "insert", mutator
                    for key, ref in self._resolve(value, named)[1]:
                        pairs.setdefault(key, ref)  # OVSDB: insert never replaces a value
                table[uid][column] = ["map", sorted(pairs.items())]

    def _select(self, table: str, where: list[list[Any]]) -> list[str]:
        found = []
        for uid, row in self.tables[table].items():
            ok = True
            for column, _, value in where:
                actual = ["uuid", uid] if column == "_uuid" else row.get(column)
                ok = ok and actual == value
            if ok:
                found.append(uid)
        return found

    def _resolve(self, value: Any, named: dict[str, str]) -> Any:
        if isinstance(value, list) and len(value) == 2 and value[0] == "named-uuid":
            return ["uuid", named[value[1]]]
        if isinstance(value, list):
            return [self._resolve(v, named) for v in value]
        if isinstance(value, dict):
            return {k: self._resolve(v, named) for k, v in value.items()}
        return value

    def _refs(self) -> set[str]:
        found: set[str] = set()

        def walk(value: Any) -> None:
            if isinstance(value, list) and len(value) == 2 and value[0] == "uuid":
                found.add(value[1])
            elif isinstance(value, list):
                for v in value:
                    walk(v)

        for name, table in self.tables.items():
            if name in ("Physical_Locator", "Physical_Locator_Set"):
                continue
            for row in table.values():
                for v in row.values():
                    walk(v)
        return found

    def _collect_garbage(self) -> None:
        refs = self._refs()
        sets = self.tables["Physical_Locator_Set"]
        for uid in [u for u in sets if u not in refs]:
            del sets[uid]
        used = {r[1] for row in sets.values() for r in row["locators"][1]} | refs
        locators = self.tables["Physical_Locator"]
        for uid in [u for u in locators if u not in used]:
            del locators[uid]
        seen = set()
        for row in locators.values():
            key = (row.get("encapsulation_type"), row.get("dst_ip"))
            if key in seen:
                raise FakeVtepError(f"duplicate Physical_Locator {key}")
            seen.add(key)

    def _check_references(self) -> None:
        for table in ("Ucast_Macs_Remote", "Mcast_Macs_Remote", "Ucast_Macs_Local"):
            for row in self.tables[table].values():
                if row["logical_switch"][1] not in self.tables["Logical_Switch"]:
                    raise FakeVtepError(f"{table} refers to a missing logical switch")
        for row in self.tables["Physical_Port"].values():
            for _, ref in row["vlan_bindings"][1]:
                if ref[1] not in self.tables["Logical_Switch"]:
                    raise FakeVtepError("vlan_bindings refers to a missing logical switch")
        names = [row["name"] for row in self.tables["Logical_Switch"].values()]
        if len(names) != len(set(names)):
            raise FakeVtepError("duplicate Logical_Switch name")
