"""scim2-models' protocol models (RFC 7643 / 7644), imported when the writer first needs one.

Importing scim2_models builds every model of the package (≈0.35 s), and parametrizing a generic
one costs more: a sync with nothing to write, or a command that never talks SCIM, should not pay
that at start-up. Each accessor imports inside the function and is cached, so the cost is paid
once, by the first page, PATCH, error or /Bulk answer.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scim2_models import (
        BulkResponse,
        EnterpriseUser,
        Error,
        Group,
        ListResponse,
        PatchOp,
        PatchOperation,
        ServiceProviderConfig,
        User,
    )


@cache
def page_model() -> type[ListResponse[User[EnterpriseUser]]]:
    from scim2_models import EnterpriseUser, ListResponse, User

    return ListResponse[User[EnterpriseUser]]


@cache
def config_model() -> type[ServiceProviderConfig]:
    from scim2_models import ServiceProviderConfig

    return ServiceProviderConfig


@cache
def patch_model(resource: str) -> type[PatchOp[Any]]:
    """The PatchOp checked against Group for "Groups", against the core and enterprise User otherwise."""
    from scim2_models import EnterpriseUser, Group, PatchOp, User

    return PatchOp[Group] if resource == "Groups" else PatchOp[User[EnterpriseUser]]


@cache
def patch_operation_model() -> type[PatchOperation[Any]]:
    from scim2_models import PatchOperation

    return PatchOperation


@cache
def group_model() -> type[Group]:
    from scim2_models import Group

    return Group


@cache
def error_model() -> type[Error]:
    from scim2_models import Error

    return Error


@cache
def bulk_response_model() -> type[BulkResponse[Any]]:
    from scim2_models import BulkResponse, EnterpriseUser, User

    return BulkResponse[User[EnterpriseUser]]
