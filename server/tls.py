"""TLS contexts for the server: ALPN h2, and a self-signed development
certificate when none is given."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

#: Names the development certificate is valid for.
DEV_HOSTS = ("localhost", "127.0.0.1", "::1")


def server_context(certfile: str, keyfile: Optional[str] = None) -> ssl.SSLContext:
    """A server SSLContext for HTTP/2: TLS 1.2 or newer, ALPN ``h2``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def development_context(directory: Optional[Path] = None) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for localhost.

    Made with the ``cryptography`` package when it is installed, else with
    the ``openssl`` command.  Never use it beyond development.
    """
    directory = Path(directory or tempfile.mkdtemp(prefix="nghttp2-cffi-dev-cert-"))
    cert, key = directory / "cert.pem", directory / "key.pem"
    write_development_certificate(cert, key)
    return server_context(str(cert), str(key))


def write_development_certificate(cert_path: Path, key_path: Path) -> None:
    """Write a self-signed certificate for localhost and its key (PEM)."""
    try:
        _write_with_cryptography(cert_path, key_path)
    except ImportError:
        _write_with_openssl(cert_path, key_path)


def _write_with_cryptography(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nghttp2-cffi development")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    alt_names += [x509.IPAddress(ipaddress.ip_address(h)) for h in DEV_HOSTS[1:]]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_with_openssl(cert_path: Path, key_path: Path) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError(
            "a development certificate needs the 'cryptography' package or the "
            "'openssl' command; install one, pass --cert/--key, or use --no-tls"
        )
    san = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=nghttp2-cffi development",
            "-addext",
            san,
            "-keyout",
            str(key_path),
            "-out",
            str(cert_path),
        ],
        check=True,
        capture_output=True,
    )
