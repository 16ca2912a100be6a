"""The SuccessFactors emulator's OAuth 2.0 endpoints.

`POST /oauth/token`: form `company_id`, `client_id`, `grant_type=urn:ietf:params:oauth:grant-type:
saml2-bearer`, `assertion` (base64 SAML 2.0), as third-party clients document it
(https://docs.jitterbit.com/app-builder/security/providers/successfactors-odata,
https://nango.dev/docs/integrations/all/sap-success-factors/connect). The assertion's signature is
verified against the client's registered X.509 certificate, then its audience, validity window,
`api_key` attribute and subject (an existing user). The answer is `{"access_token", "token_type":
"Bearer", "expires_in"}`; the shape of a refusal is not documented publicly: ours is
`{"errorMessage": ...}` with HTTP 401.

`POST /oauth/idp`: SAP's deprecated helper that signs an assertion from `client_id`, `user_id`,
`token_url` and `private_key` (base64 PEM) and returns it base64-encoded.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from typing import Any

from lxml import etree
from signxml import InvalidInput, InvalidSignature, XMLVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from provisioner.engine.kit.saml import GRANT, SAML, signed_assertion
from provisioner.sources.emulation import form_of

AUDIENCE = "www.successfactors.com"
TOKEN_SECONDS = 86399  # SuccessFactors access tokens live a day


def _refuse(message: str) -> JSONResponse:
    return JSONResponse({"errorMessage": message}, status_code=401)


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def assertion_problem(state: Any, xml: bytes, client_id: str) -> str | None:
    """Why this assertion is not accepted for `client_id`, or None; on success its subject is known."""
    if not state.certificate:
        return "no X.509 certificate is registered for this OAuth client"
    try:
        result = XMLVerifier().verify(xml, x509_cert=state.certificate)
        verified = (result[0] if isinstance(result, list) else result).signed_xml
    except (InvalidSignature, InvalidInput, etree.XMLSyntaxError, ValueError):
        return "the SAML assertion's signature does not verify against the client's certificate"
    if verified is None:
        return "the SAML assertion is not signed"
    ns = {"saml2": SAML}
    now = datetime.now(UTC)
    conditions = verified.find("saml2:Conditions", ns)
    if verified.findtext("saml2:Conditions/saml2:AudienceRestriction/saml2:Audience", namespaces=ns) != AUDIENCE:
        return f"the SAML assertion's audience is not {AUDIENCE}"
    start = _moment(conditions.get("NotBefore") if conditions is not None else None)
    end = _moment(conditions.get("NotOnOrAfter") if conditions is not None else None)
    if end is None or now >= end or (start is not None and now < start):
        return "the SAML assertion has expired or is not yet valid"
    api_key = verified.findtext(
        "saml2:AttributeStatement/saml2:Attribute[@Name='api_key']/saml2:AttributeValue", namespaces=ns
    )
    if api_key != client_id:
        return "the SAML assertion's api_key does not name this client"
    subject = verified.findtext("saml2:Subject/saml2:NameID", namespaces=ns)
    if subject != state.username:
        return "the SAML assertion names an unknown user"
    return None


def oauth_routes(state: Any) -> list[Route]:
    async def token(request: Request) -> Response:
        if (status := state.faults.take()) is not None:
            return JSONResponse({"errorMessage": "Internal Server Error"}, status_code=status)
        form = await form_of(request)
        if form.get("grant_type") != GRANT:
            return JSONResponse({"errorMessage": "unsupported grant_type"}, status_code=400)
        if form.get("company_id") != state.company_id:
            return _refuse(f"Company [{form.get('company_id', '')[:40]}] not found.")
        if form.get("client_id") != state.client_id:
            return _refuse("Invalid client_id")
        try:
            xml = base64.b64decode(form.get("assertion", ""), validate=True)
        except ValueError:
            return _refuse("the assertion is not base64")
        if (problem := assertion_problem(state, xml, state.client_id)) is not None:
            return _refuse(problem)
        access = secrets.token_urlsafe(24)
        state.tokens[access] = state.username
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_SECONDS})

    async def idp(request: Request) -> Response:
        form = await form_of(request)
        if form.get("client_id") != state.client_id:
            return _refuse("Invalid client_id")
        try:
            key = base64.b64decode(form.get("private_key", "")).decode()
            xml = signed_assertion(
                issuer=state.client_id,
                subject=form.get("user_id", ""),
                audience=AUDIENCE,
                recipient=form.get("token_url", ""),
                private_key=key,
                attributes={"api_key": state.client_id},
            )
        except (ValueError, TypeError):
            return JSONResponse({"errorMessage": "private_key is not a base64 PEM key"}, status_code=400)
        return PlainTextResponse(base64.b64encode(xml).decode())

    return [Route("/oauth/token", token, methods=["POST"]), Route("/oauth/idp", idp, methods=["POST"])]
