"""The SCIM writer's connection to one service provider: HTTP with the shared resilience (retries,
rate limits, an adaptive limit on requests in flight), what the provider announces in
/ServiceProviderConfig, and what was learned about how it really behaves (`Lessons`).

Every other part of the writer (lookups, user and group writes, /Bulk) is handed this client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import Account
from provisioner.engine.contracts.protocols import NameClaims
from provisioner.engine.kit.adaptive import AdaptiveLimit
from provisioner.engine.kit.http import RetryPolicy, resilient_client
from provisioner.engine.kit.limits import ResponseTooLarge
from provisioner.engine.kit.origin import relative_path
from provisioner.targets.mapping import flatten
from provisioner.targets.scim_models import config_model
from provisioner.targets.scim_profile import Lessons
from provisioner.targets.scim_support import SCIM_JSON, ScimSettings, auth_of, raise_for_scim

if TYPE_CHECKING:
    from scim2_models import ServiceProviderConfig


class ScimClient:
    """Requests to one SCIM app; error answers raise ScimError (raise_for_scim)."""

    def __init__(self, config: TargetConfig, settings: ScimSettings, mapping_paths: list[str]):
        self.name = config.name
        self.settings = settings
        self.paths = mapping_paths
        auth, headers = auth_of(settings, config.token)
        # The target's own limit on requests in flight, whatever number of workers are in flight:
        # found by AIMD up to `concurrency` (kit/adaptive.py), or exactly `concurrency` if not adaptive.
        self.limit = AdaptiveLimit(config.concurrency, adaptive=config.adaptive_concurrency)
        self.http = resilient_client(
            config.base_url.rstrip("/") + "/",
            auth=auth,
            headers={"Accept": SCIM_JSON, **headers},
            timeout=config.timeout,
            policy=RetryPolicy(max_attempts=config.max_attempts),
            rate=config.rate_limit,
            burst=config.burst,
            limit=self.limit,
            app=f"target {config.name}",
            max_response=config.max_response_bytes,
        )
        self.config: ServiceProviderConfig | None = None
        self.lessons = Lessons(config.name)  # the runtime hands in the stored profile (`Lessons.use`)
        # Set when several engines share the app: groups are claimed, group writes leased.
        self.claims: NameClaims | None = None
        self.user_names: dict[str, str] = {}  # account id → userName, to match members listed by it

    async def call(self, method: str, path: str, *, unread_ok: bool = False, **kwargs: Any) -> dict[str, Any]:
        """The app's answer. `unread_ok`: a success whose answer is over max_response_bytes is
        taken as an empty answer, for a write that is read back another way (a large group's)."""
        try:
            response = await self.http.request(method, relative_path(self.name, path), **kwargs)
        except ResponseTooLarge as exc:
            if unread_ok and 200 <= exc.answer_status < 300:
                return {}
            raise
        raise_for_scim(response)
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()

    async def discover(self) -> ServiceProviderConfig:
        """What the service provider supports (RFC 7643 §5), asked once."""
        if self.config is None:
            announced = await self.call("GET", "ServiceProviderConfig")
            self.config = config_model().model_validate(announced)
            self.lessons.judge_config(announced)
        return self.config

    async def supports(self, feature: str) -> bool:
        """patch, bulk, filter, etag, sort, changePassword — as the server announces them."""
        announced = getattr(await self.discover(), feature, None)
        return bool(announced is not None and announced.supported)

    def account(self, resource: dict[str, Any]) -> Account:
        if resource.get("userName"):
            self.user_names[str(resource["id"])] = str(resource["userName"])
        return Account(
            id=resource["id"],
            active=resource.get("active", True) is not False,
            attributes=flatten(resource, self.paths),
        )

    async def aclose(self) -> None:
        await self.http.aclose()
