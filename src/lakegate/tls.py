"""TLS for `lakegate serve`: the reference server's `ssl` block, including `selfSigned` (a certificate made at
start for the configured host and kept beside the configuration; recipients must then disable verification or
trust it explicitly)."""

from __future__ import annotations

import datetime
import ipaddress
import logging
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from lakegate.config import SslConfig
from lakegate.exceptions import ConfigError
from lakegate.secret_files import write_private

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

log = logging.getLogger("lakegate.tls")
SELF_SIGNED_DIR = ".lakegate-tls"  # beside the configuration file


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
        cert, key = self_signed_certificate(host, base / SELF_SIGNED_DIR)
        return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    raise ConfigError("ssl: give certificateFile and certificateKeyFile, or selfSigned: true")


def self_signed_certificate(host: str, directory: Path) -> tuple[Path, Path]:
    """cert.pem and key.pem (mode 0600) in `directory`: the ones already there while they are valid for `host`
    for at least another day, else new ones. Kept across restarts, so recipients who trusted the certificate
    (or pinned its fingerprint) keep working; its path and SHA-256 fingerprint are logged at each start."""
    from cryptography.hazmat.primitives import hashes

    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert = _reusable(cert_path, key_path, host)
    made = cert is None
    if cert is None:
        cert = _make_certificate(host, cert_path, key_path)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    expires = cert.not_valid_after_utc.date().isoformat()
    log.info(
        "ssl.selfSigned: %s certificate %s (SHA-256 %s, valid until %s); its private key is %s",
        "made a new" if made else "reusing the",
        cert_path,
        fingerprint,
        expires,
        key_path,
        extra={"tls": {"certificate": str(cert_path), "sha256": fingerprint, "expires": expires}},
    )
    return cert_path, key_path


def _reusable(cert_path: Path, key_path: Path, host: str) -> Certificate | None:
    from cryptography import x509

    if not (cert_path.is_file() and key_path.is_file()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None  # not a certificate lakegate made: replace it
    if cert.not_valid_after_utc < datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1):
        return None
    return (
        cert
        if host
        in {str(v) for v in names.get_values_for_type(x509.IPAddress)}
        | set(names.get_values_for_type(x509.DNSName))
        else None
    )


def _make_certificate(host: str, cert_path: Path, key_path: Path) -> Certificate:
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
    cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert
