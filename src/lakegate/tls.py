"""TLS for `lakegate serve`: the reference server's `ssl` block, including `selfSigned` (a certificate made at
start for the configured host; recipients must then disable verification or trust it explicitly)."""

from __future__ import annotations

import datetime
import ipaddress
import tempfile
from pathlib import Path
from typing import TypedDict

from lakegate.config import SslConfig
from lakegate.exceptions import ConfigError
from lakegate.secret_files import write_private


class SslOptions(TypedDict, total=False):
    """uvicorn.run's ssl_* keyword arguments."""

    ssl_certfile: str
    ssl_keyfile: str
    ssl_keyfile_password: str


def ssl_options(ssl: SslConfig | None, base: Path, host: str) -> SslOptions:
    """uvicorn's ssl_* arguments; paths in the configuration are relative to the configuration file."""
    if ssl is None:
        return {}
    if ssl.certificate_file:
        if not ssl.certificate_key_file:
            raise ConfigError("ssl.certificateKeyFile: required with ssl.certificateFile")
        options: SslOptions = {
            "ssl_certfile": str(base / ssl.certificate_file),
            "ssl_keyfile": str(base / ssl.certificate_key_file),
        }
        if ssl.certificate_password_file:
            options["ssl_keyfile_password"] = (base / ssl.certificate_password_file).read_text().strip()
        return options
    if ssl.self_signed:
        cert, key = self_signed_certificate(host)
        return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    raise ConfigError("ssl: give certificateFile and certificateKeyFile, or selfSigned: true")


def self_signed_certificate(host: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory = Path(tempfile.mkdtemp(prefix="lakegate-tls-"))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    return cert_path, key_path
