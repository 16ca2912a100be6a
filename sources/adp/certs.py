"""Certificates for ADP's mutual TLS, made locally: a private CA, a server certificate for the
emulator (127.0.0.1, localhost) and a client certificate, as ADP issues one from the CSR a customer
sends (https://developers.adp.com/articles/guides/auth-process-data-connector-apps). Used by the
emulator, the sandbox and the tests; the connector only loads PEM files."""

from __future__ import annotations

import ipaddress
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(
    subject: str, key: Key, issuer: tuple[x509.Name, Key] | None, *, ca: bool = False, server: bool = False
) -> x509.Certificate:
    now = datetime.now(UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        purpose = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Key, passphrase: str | None = None) -> bytes:
    protect: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, protect)


@dataclass
class TlsFiles:
    """PEM files in a private temporary folder (removed with this object): the CA both sides trust,
    the server's certificate and key, and a client certificate and key (the key encrypted when a
    passphrase is given). `other_client_*` is a client certificate from a CA the server does not
    trust, for the refusal tests."""

    passphrase: str | None = None
    folder: tempfile.TemporaryDirectory[str] = field(default_factory=tempfile.TemporaryDirectory)

    def __post_init__(self) -> None:
        root = Path(self.folder.name)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _issue("provisioner emulator CA", ca_key, None, ca=True)
        issuer = (ca.subject, ca_key)
        self.ca = self._write(root / "ca.pem", _pem(ca))
        server_key = ec.generate_private_key(ec.SECP256R1())
        self.server_cert = self._write(root / "server.pem", _pem(_issue("127.0.0.1", server_key, issuer, server=True)))
        self.server_key = self._write(root / "server.key", _key_pem(server_key))
        client_key = ec.generate_private_key(ec.SECP256R1())
        self.client_cert = self._write(root / "client.pem", _pem(_issue("AcmeMutualSSL", client_key, issuer)))
        self.client_key = self._write(root / "client.key", _key_pem(client_key, self.passphrase))
        stranger_key = ec.generate_private_key(ec.SECP256R1())
        stranger_ca = (_name("someone else's CA"), ec.generate_private_key(ec.SECP256R1()))
        self.other_client_cert = self._write(root / "other.pem", _pem(_issue("Other", stranger_key, stranger_ca)))
        self.other_client_key = self._write(root / "other.key", _key_pem(stranger_key))

    @staticmethod
    def _write(path: Path, data: bytes) -> Path:
        path.write_bytes(data)
        path.chmod(0o600)
        return path
