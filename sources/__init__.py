"""Source connectors: one folder per vendor.

A vendor folder `provisioner/sources/<type>/` holds `connector.py` (a class named in `CONNECTOR`
below the folder's `__init__`), and optionally `webhook.py` (a `verify` function) and
`emulator.py` (`create_app(state)` and the state class). The folder name is the config's `type:`,
so adding a vendor is adding a folder: nothing here names vendors.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from provisioner.engine.contracts.protocols import Source

Verifier = Callable[..., list[str]]


@cache
def source_types() -> tuple[str, ...]:
    """Every vendor folder, i.e. every `type:` a source may have."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg))


def _connector(type_: str) -> Any:
    if type_ not in source_types():
        raise ValueError(f"unknown source type {type_!r} (known: {', '.join(source_types())})")
    module = importlib.import_module(f"{__name__}.{type_}")
    return getattr(importlib.import_module(f"{__name__}.{type_}.connector"), module.CONNECTOR)


def build_source(name: str, type_: str, settings: dict[str, Any]) -> Source:
    """Instantiate the connector for a config entry; raises ValueError naming what is wrong."""
    result: Source = _connector(type_).from_settings(name, settings)
    return result


@cache
def source_kind(type_: str) -> str:
    """ "ats" for an applicant tracking system (`KIND` in the vendor's `__init__`), else "hris"."""
    if type_ not in source_types():
        return "hris"
    return str(getattr(importlib.import_module(f"{__name__}.{type_}"), "KIND", "hris"))


def settings_problems(item: Mapping[str, Any], common_keys: set[str]) -> list[tuple[tuple[Any, ...], str]]:
    """Problems with one config entry's connector settings, each at its key (for `validate`)."""
    try:
        connector = _connector(str(item.get("type")))
    except ValueError as exc:
        return [(("type",), str(exc))]
    check = getattr(connector, "problems", None)
    return check({k: v for k, v in item.items() if k not in common_keys}, common_keys) if check else []


def settings_paths(item: Mapping[str, Any]) -> tuple[str, ...]:
    """A config entry's settings that name files (they resolve against the config's directory)."""
    try:
        return tuple(getattr(_connector(str(item.get("type"))), "path_settings", ()))
    except ValueError:
        return ()


@cache
def webhook_verifier(type_: str) -> Verifier | None:
    """The vendor's signature check, or None when that vendor sends no webhooks."""
    if type_ not in source_types() or importlib.util.find_spec(f"{__name__}.{type_}.webhook") is None:
        return None
    verify: Verifier = importlib.import_module(f"{__name__}.{type_}.webhook").verify
    return verify


@cache
def signature_headers(type_: str) -> tuple[str, ...]:
    """Headers a vendor's notices must carry to be read at all (`SIGNED_BY` in its webhook.py)."""
    if webhook_verifier(type_) is None:
        return ()
    return tuple(getattr(importlib.import_module(f"{__name__}.{type_}.webhook"), "SIGNED_BY", ()))


def emulator(type_: str) -> Any:
    """The vendor's emulator module (`create_app`, `State`), for the sandbox and the tests."""
    return importlib.import_module(f"{__name__}.{type_}.emulator")


def emulated_types() -> tuple[str, ...]:
    return tuple(t for t in source_types() if importlib.util.find_spec(f"{__name__}.{t}.emulator") is not None)
