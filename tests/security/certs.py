"""Certificates for the TLS tests, made with ``cryptography``: a CA, a server certificate for
127.0.0.1/localhost and a client certificate, written as PEM files."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, key, cert: x509.Certificate) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def make_pki(directory: Path) -> dict[str, Path]:
    """``{"ca", "server_cert", "server_key", "client_cert", "client_key"}`` PEM paths in ``directory``;
    plus ``"other_ca"`` and an ``"other_client_cert"/"other_client_key"`` pair it signed (a client
    the server must refuse)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    out: dict[str, Path] = {}

    def issue(subject: str, issuer_key, issuer_name, key, *, ca=False, server=False) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )  # fmt: skip
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        elif not ca:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    for prefix in ("", "other_"):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = issue(f"{prefix}chainotel test CA", ca_key, _name(f"{prefix}chainotel test CA"), ca_key, ca=True)
        out[f"{prefix}ca"] = _write(directory / f"{prefix}ca", ca_key, ca_cert)[0]
        if not prefix:
            key = ec.generate_private_key(ec.SECP256R1())
            out["server_cert"], out["server_key"] = _write(
                directory / "server", key, issue("127.0.0.1", ca_key, ca_cert.subject, key, server=True))
        key = ec.generate_private_key(ec.SECP256R1())
        out[f"{prefix}client_cert"], out[f"{prefix}client_key"] = _write(
            directory / f"{prefix}client", key, issue(f"{prefix}exporter", ca_key, ca_cert.subject, key))
    return out
