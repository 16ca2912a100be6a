"""Flat SCIM attribute paths (as written in a mapping) ↔ nested SCIM resources and PATCH operations.

Paths follow RFC 7644 §3.5.2: `title`, `name.givenName`, `emails[type eq "work"].value`, and
extension attributes behind their schema URN, e.g.
`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_PATH = re.compile(r'^(?P<attr>[A-Za-z][\w$-]*)(?:\[(?P<fattr>\w+) eq "(?P<fval>[^"]*)"\])?(?:\.(?P<sub>[\w$-]+))?$')


@dataclass(frozen=True)
class Path:
    urn: str | None
    attr: str
    filter_attr: str | None = None
    filter_value: str | None = None
    sub: str | None = None

    @classmethod
    def parse(cls, text: str) -> Path:
        return _parse(text)

    @classmethod
    def _parse(cls, text: str) -> Path:
        urn, rest = None, text
        if text.lower().startswith("urn:"):
            urn, _, rest = text.rpartition(":")
        match = _PATH.match(rest)
        if not match or (urn is not None and not urn):
            raise ValueError(f"not a SCIM attribute path: {text!r}")
        sub = match["sub"] or ("value" if match["fattr"] else None)
        return cls(urn, match["attr"], match["fattr"], match["fval"], sub)

    def container(self, resource: dict[str, Any], create: bool) -> dict[str, Any] | None:
        if self.urn is None:
            return resource
        if create:
            schemas = resource.setdefault("schemas", [])
            if self.urn not in schemas:
                schemas.append(self.urn)
            return resource.setdefault(self.urn, {})
        found = resource.get(self.urn)
        return found if isinstance(found, dict) else None

    def set(self, resource: dict[str, Any], value: Any) -> None:
        node = self.container(resource, create=True)
        assert node is not None
        if self.filter_attr:
            items = node.setdefault(self.attr, [])
            item = next((i for i in items if i.get(self.filter_attr) == self.filter_value), None)
            if item is None:
                item = {self.filter_attr: self.filter_value}
                if not items:
                    item["primary"] = True
                items.append(item)
            item[self.sub or "value"] = value
        elif self.sub:
            node.setdefault(self.attr, {})[self.sub] = value
        else:
            node[self.attr] = value

    def remove(self, resource: dict[str, Any]) -> None:
        node = self.container(resource, create=False)
        if node is None or self.attr not in node:
            return
        if self.filter_attr:
            for item in node[self.attr] or []:
                if isinstance(item, dict) and item.get(self.filter_attr) == self.filter_value:
                    item.pop(self.sub or "value", None)
        elif self.sub:
            if isinstance(node[self.attr], dict):
                node[self.attr].pop(self.sub, None)
        else:
            del node[self.attr]

    def get(self, resource: dict[str, Any]) -> Any:
        node = self.container(resource, create=False)
        if node is None:
            return None
        value = _ci_get(node, self.attr)
        if self.filter_attr:
            for item in value or []:
                if isinstance(item, dict) and item.get(self.filter_attr) == self.filter_value:
                    return item.get(self.sub or "value")
            return None
        if self.sub:
            return _ci_get(value, self.sub) if isinstance(value, dict) else None
        return value


def _ci_get(node: dict[str, Any], key: str) -> Any:
    """SCIM attribute names are case-insensitive (RFC 7643 §2.1)."""
    if key in node:
        return node[key]
    lowered = key.lower()
    return next((v for k, v in node.items() if k.lower() == lowered), None)


def apply_attributes(resource: dict[str, Any], attributes: dict[str, Any]) -> None:
    """Set (or, for None, remove) just these attributes in a full resource, for a PUT."""
    for path, value in attributes.items():
        parsed = Path.parse(path)
        if value is not None:
            parsed.set(resource, value)
        else:
            parsed.remove(resource)


def build_resource(attributes: dict[str, Any], schema: str) -> dict[str, Any]:
    resource: dict[str, Any] = {"schemas": [schema]}
    for path, value in attributes.items():
        if value is not None:
            Path.parse(path).set(resource, value)
    return resource


def flatten(resource: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """The resource's values at the mapping's paths (what `build_resource` would have written)."""
    out = {}
    for path in paths:
        value = Path.parse(path).get(resource)
        if value is not None:
            out[path] = value
    return out


def patch_operations(attributes: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
    """replace for new values, remove for None: only the given attributes are touched.

    A filtered path (`emails[type eq "work"].value`) that had no value before gets an `add` of a
    new element: `replace` on a filter that matches nothing is a 400 noTarget (RFC 7644 §3.5.2.3).
    """
    ops: list[dict[str, Any]] = []
    for path, value in attributes.items():
        parsed = Path.parse(path)
        if value is None:
            ops.append({"op": "remove", "path": path})
        elif parsed.filter_attr and previous.get(path) is None:
            element = {parsed.filter_attr: parsed.filter_value, parsed.sub or "value": value}
            prefix = f"{parsed.urn}:" if parsed.urn else ""
            ops.append({"op": "add", "path": f"{prefix}{parsed.attr}", "value": [element]})
        else:
            ops.append({"op": "replace", "path": path, "value": value})
    return ops


@lru_cache(maxsize=4096)
def _parse(text: str) -> Path:
    return Path._parse(text)  # a mapping has a handful of paths, parsed for every account we read
