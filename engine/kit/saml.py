"""OAuth 2.0 SAML 2.0 bearer assertion grant (RFC 7522): a signed SAML assertion is exchanged at the
token endpoint for a bearer token. SAP SuccessFactors authenticates OData clients this way
(issuer = the client's API key, audience `www.successfactors.com`, recipient the token endpoint:
https://docs.jitterbit.com/app-builder/security/providers/successfactors-odata). SAP's `/oauth/idp`
helper, which signed assertions server-side from a private key sent in the request, is deprecated
and removed (https://developer.sailpoint.com/discuss/t/migrating-successfactors-api-authentication-in-sailpoint-isc-from-sf-oauth-idp-to-sap-cloud-identity-services-with-oidc/204883),
so the assertion is built and signed here with the key whose X.509 certificate the provider holds.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml import XMLSigner, methods

from provisioner.engine.kit.oauth import RenewingBearer

GRANT = "urn:ietf:params:oauth:grant-type:saml2-bearer"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _el(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, f"{{{SAML}}}{name}", attrs)
    if text is not None:
        child.text = text
    return child


def signed_assertion(
    *,
    issuer: str,
    subject: str,
    audience: str,
    recipient: str,
    private_key: str,
    certificate: str | None = None,
    attributes: dict[str, str] | None = None,
    lifetime: timedelta = timedelta(minutes=10),
) -> bytes:
    """A SAML 2.0 assertion for `subject`, enveloped-signed (RSA-SHA256, exclusive C14N) with the
    signature right after the Issuer, where the SAML schema wants it."""
    now = datetime.now(UTC)
    until = _stamp(now + lifetime)
    root = etree.Element(
        f"{{{SAML}}}Assertion",
        {"ID": f"_{secrets.token_hex(16)}", "IssueInstant": _stamp(now), "Version": "2.0"},
        nsmap={"saml2": SAML},
    )
    _el(root, "Issuer", issuer)
    etree.SubElement(root, f"{{{DSIG}}}Signature", {"Id": "placeholder"}, nsmap={"ds": DSIG})
    subj = _el(root, "Subject")
    _el(subj, "NameID", subject, Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified")
    confirmation = _el(subj, "SubjectConfirmation", Method=BEARER)
    _el(confirmation, "SubjectConfirmationData", NotOnOrAfter=until, Recipient=recipient)
    conditions = _el(root, "Conditions", NotBefore=_stamp(now - timedelta(minutes=1)), NotOnOrAfter=until)
    _el(_el(conditions, "AudienceRestriction"), "Audience", audience)
    authn = _el(root, "AuthnStatement", AuthnInstant=_stamp(now), SessionIndex=f"_{secrets.token_hex(8)}")
    _el(
        _el(authn, "AuthnContext"),
        "AuthnContextClassRef",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
    )
    if attributes:
        statement = _el(root, "AttributeStatement")
        for name, value in attributes.items():
            _el(_el(statement, "Attribute", Name=name), "AttributeValue", value)
    signer = XMLSigner(
        method=methods.enveloped, signature_algorithm="rsa-sha256", digest_algorithm="sha256", c14n_algorithm=EXC_C14N
    )
    signed = signer.sign(root, key=private_key.encode(), cert=certificate, reference_uri=root.get("ID"))
    return etree.tostring(signed)


def check_signing_key(private_key: str, certificate: str | None) -> None:
    """Refuse, at config time and without quoting either text, a key that cannot sign RSA-SHA256
    or a certificate that is not the key's: otherwise every token request fails in the library."""
    try:
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("private_key: not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("private_key: not an RSA key (the assertion is signed with RSA-SHA256)")
    if certificate is None:
        return
    try:
        held = x509.load_pem_x509_certificate(certificate.encode()).public_key()
    except ValueError:
        raise ValueError("certificate: not a PEM X.509 certificate") from None
    if not isinstance(held, rsa.RSAPublicKey) or held.public_numbers() != key.public_key().public_numbers():
        raise ValueError("certificate: it does not belong to private_key")


class SamlBearer(RenewingBearer):
    """Bearer tokens from the SAML 2.0 bearer grant; every renewal signs a fresh assertion (they
    live minutes, the tokens hours). `form` holds the provider's extra fields (`company_id`)."""

    refused = "the token endpoint refused the SAML assertion"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        user_id: str,
        private_key: str,
        *,
        audience: str,
        certificate: str | None = None,
        form: dict[str, str] | None = None,
        margin: float = 60.0,
    ):
        super().__init__(margin)
        self.token_url = token_url
        self.client_id, self.user_id = client_id, user_id
        self.private_key, self.certificate = private_key, certificate
        self.audience = audience
        self.form = dict(form or {})

    def _token_request(self) -> httpx.Request:
        assertion = signed_assertion(
            issuer=self.client_id,
            subject=self.user_id,
            audience=self.audience,
            recipient=self.token_url,
            private_key=self.private_key,
            certificate=self.certificate,
            attributes={"api_key": self.client_id},
        )
        form = {
            **self.form,
            "client_id": self.client_id,
            "grant_type": GRANT,
            "assertion": base64.b64encode(assertion).decode(),
        }
        return httpx.Request("POST", self.token_url, data=form, headers={"Accept": "application/json"})
