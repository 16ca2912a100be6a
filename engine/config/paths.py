"""Relative paths in a config mean "next to the config file", whatever the current directory.

`provisioner plan -c /etc/provisioner/config.yaml` run from anywhere reads the same export, keeps
its state in the same SQLite file and its refresh tokens in the same files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

# A source entry's settings that are file paths (the sources registry knows each connector's).
PathKeys = Callable[[Mapping[str, Any]], Iterable[str]]

_SQLITE = re.compile(r"^(sqlite(?:\+\w+)?:///)([^?]*)(.*)$")


def _resolved(value: Any, base: Path) -> Any:
    if not isinstance(value, str) or not value or "${" in value or Path(value).expanduser().is_absolute():
        return value
    return str(base / value)


def resolve_paths(data: dict[str, Any], base: Path, path_keys: PathKeys | None) -> None:
    """In place, on the raw data: store.url's SQLite file, the Kafka TLS files, each source's path
    settings and every auth block's token_file."""
    store = data.get("store")
    if isinstance(store, dict) and isinstance(url := store.get("url"), str) and (match := _SQLITE.match(url)):
        prefix, file, query = match.groups()
        if file and not file.startswith(":memory:"):
            store["url"] = prefix + _resolved(file, base) + query
    kafka = data.get("kafka")
    tls = kafka.get("tls") if isinstance(kafka, dict) else None
    if isinstance(tls, dict):
        for key in ("ca_file", "cert_file", "key_file"):
            if key in tls:
                tls[key] = _resolved(tls[key], base)
    for kind in ("sources", "targets"):
        entries = data.get(kind)
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            for key in path_keys(entry) if path_keys and kind == "sources" else ():
                if key in entry:
                    entry[key] = _resolved(entry[key], base)
            auth = entry.get("auth")
            if isinstance(auth, dict) and "token_file" in auth:
                auth["token_file"] = _resolved(auth["token_file"], base)
