"""Reading a target's accounts for reconciliation: the whole listing, or why the target is not judged."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx

from provisioner.engine.contracts.models import Account
from provisioner.engine.contracts.protocols import ListingUnsettled, ListsAccounts

log = logging.getLogger("provisioner.reconcile")


async def list_all(
    name: str, target: ListsAccounts, progress: Callable[[str, int], None] | None
) -> list[Account] | str:
    """Every account of the target, or why the target is not judged: a listing whose pages did not
    add up (accounts created or removed while it was read shift index-based pages) is read once
    more, and if it still does not add up the target is not judged (an account it never showed is
    not a missing one); nor is one the app did not answer (an error, a page over max_response_bytes)."""
    for attempt in (1, 2):
        accounts: list[Account] = []
        try:
            async for account in target.list_accounts():
                accounts.append(account)
                if progress and len(accounts) % 200 == 0:
                    progress(name, len(accounts))
        except ListingUnsettled as exc:
            log.warning("%s%s", exc, "; listing it again" if attempt == 1 else "; not reconciled")
            if attempt == 2:
                return str(exc)
            continue
        except Exception as exc:  # what the app answered, whatever the writer raises for it: the other targets go on
            log.warning("target %s could not be listed (%s); not reconciled", name, failed(exc))
            return f"its accounts could not be listed: {failed(exc)}"
        if progress:
            progress(name, len(accounts))
        return accounts
    raise AssertionError("unreachable")


def failed(exc: Exception) -> str:
    """What went wrong, in the words a person reads in the report."""
    return str(exc) if isinstance(exc, httpx.HTTPError) and str(exc) else f"{type(exc).__name__}: {exc}"
