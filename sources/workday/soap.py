"""SOAP 1.1 for Workday's web services: the namespaces, the WS-Security UsernameToken envelope
(`isu_user@tenant`, PasswordText) and faults
(https://community.workday.com/sites/default/files/file-hosting/productionapi/Human_Resources/v40.0/Get_Workers.html)."""

from __future__ import annotations

from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
WD = "urn:com.workday/bsvc"
NS = {"env": SOAP, "wd": WD}


def el(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, f"{{{WD}}}{name}", {f"{{{WD}}}{k}": v for k, v in attrs.items()})
    if text is not None:
        child.text = text
    return child


def soap_envelope(username: str, password: str) -> tuple[etree._Element, etree._Element]:
    """An envelope with the WS-Security UsernameToken header, and its empty body."""
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"env": SOAP, "wsse": WSSE, "bsvc": WD})
    header = etree.SubElement(env, f"{{{SOAP}}}Header")
    security = etree.SubElement(header, f"{{{WSSE}}}Security", {f"{{{SOAP}}}mustUnderstand": "1"})
    token = etree.SubElement(security, f"{{{WSSE}}}UsernameToken")
    etree.SubElement(token, f"{{{WSSE}}}Username").text = username
    etree.SubElement(token, f"{{{WSSE}}}Password", Type=PASSWORD_TEXT).text = password
    return env, etree.SubElement(env, f"{{{SOAP}}}Body")


def fault_of(content: bytes) -> tuple[str, str] | None:
    """(faultcode, faultstring) of a SOAP fault, or None."""
    try:
        root = etree.fromstring(content)
    except etree.XMLSyntaxError:
        return None
    fault = root.find(".//env:Fault", NS)
    if fault is None:
        return None
    return fault.findtext("faultcode", "") or "", fault.findtext("faultstring", "") or ""
