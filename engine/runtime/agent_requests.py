"""Requests an agent (or any caller who may not act alone) makes: provision a person now, retry
failures, grant one person access to one target. Each becomes an approval request a person decides;
nothing happens before that.

Interface only: the implementation lands with the approvals work of issue #29."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from provisioner.engine.config import Config
from provisioner.engine.store import Store

RequestKind = Literal["provision", "retry", "access"]


class RequestReceipt(BaseModel):
    """What the caller is told: the request, its state and who must approve it."""

    id: str
    kind: RequestKind
    worker_id: str | None = None
    target: str | None = None
    groups: list[str] = Field(default_factory=list)
    state: str
    approvers: str = Field(description="who must approve, one sentence a person can read")
    expires_at: datetime


def request_provision_now(
    store: Store, config: Config, worker_id: str, requested_by: str, reason: str | None = None
) -> RequestReceipt:
    """Ask that `worker_id` be re-planned now. LookupError: no such worker."""
    raise NotImplementedError


def request_retry(
    store: Store,
    config: Config,
    requested_by: str,
    worker: str | None = None,
    target: str | None = None,
    reason: str | None = None,
) -> RequestReceipt:
    """Ask that failures (of one worker, one target, or both) be retried. LookupError: none match;
    ValueError: neither worker nor target given."""
    raise NotImplementedError


def request_access(
    store: Store,
    config: Config,
    worker_id: str,
    target: str,
    requested_by: str,
    groups: list[str] | None = None,
    reason: str | None = None,
) -> RequestReceipt:
    """Ask that `worker_id` get an account (and `groups`) in `target`. LookupError: no such worker
    or target; ValueError: a group the target cannot hold, or a leaver."""
    raise NotImplementedError
