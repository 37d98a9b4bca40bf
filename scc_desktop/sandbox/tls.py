"""A local certificate authority for the sandbox, kept in its data folder.

The CA persists so a restarted sandbox is trusted by clients that saved its path; the server
certificate is issued fresh at each start for 127.0.0.1, ::1 and localhost.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scc_desktop.paths import make_private_dir, make_private_file

CA_CERT_NAME = "sandbox-ca.pem"
CA_KEY_NAME = "sandbox-ca-key.pem"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SandboxCA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    ca_file: Path

    @classmethod
    def load_or_create(cls, folder: Path) -> SandboxCA:
        make_private_dir(folder)
        cert_path, key_path = folder / CA_CERT_NAME, folder / CA_KEY_NAME
        if cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if isinstance(
                key, ec.EllipticCurvePrivateKey
            ) and cert.not_valid_after_utc > _now() + dt.timedelta(days=7):
                return cls(cert, key, cert_path)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scc-desktop sandbox CA")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(days=1))
            .not_valid_after(_now() + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        make_private_file(key_path).write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        make_private_file(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(cert, key, cert_path)

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context with a fresh leaf certificate for loopback names."""
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(self.cert.subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(hours=1))
            .not_valid_after(_now() + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        with tempfile.TemporaryDirectory() as tmp:
            chain = Path(tmp) / "leaf.pem"
            make_private_file(chain).write_bytes(
                leaf_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                + leaf.public_bytes(serialization.Encoding.PEM)
                + self.cert.public_bytes(serialization.Encoding.PEM)
            )
            context.load_cert_chain(chain)
        return context
