"""TLS contexts for the server: ALPN h2, and a self-signed development
certificate when none is given."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional, Union

#: Names the development certificate is valid for.
DEV_HOSTS = ("localhost", "127.0.0.1", "::1")


#: Days a development certificate is valid; one with less than a day left
#: is made anew.
DEV_CERT_DAYS = 365
#: ``--ssl-cert-reqs`` names.
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def server_context(
    certfile: str, keyfile: Optional[str] = None, password: Optional[str] = None
) -> ssl.SSLContext:
    """A server SSLContext for HTTP/2: TLS 1.2 or newer, ALPN ``h2``.
    ``password`` decrypts an encrypted ``keyfile``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile, password)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def require_client_certificates(
    ctx: ssl.SSLContext, ca_certs: str, cert_reqs: Union[str, int] = "required"
) -> None:
    """Mutual TLS: ask clients for a certificate signed by a CA in
    ``ca_certs`` (PEM); ``cert_reqs``: ``"required"`` (a client without one
    fails the handshake), ``"optional"`` or ``"none"`` (or ``ssl.CERT_*``).
    Handlers see it as ``client_certificate``, ASGI apps in the ``tls``
    extension of the scope."""
    ctx.load_verify_locations(cafile=ca_certs)
    ctx.verify_mode = ssl.VerifyMode(
        CERT_REQS[cert_reqs] if isinstance(cert_reqs, str) else cert_reqs
    )


class DevelopmentCertificate(NamedTuple):
    """Files of the development certificate: the leaf ``cert`` for
    localhost, 127.0.0.1 and ::1, its ``key``, and the ``ca`` that signed it
    (what ``curl --cacert`` and clients trust)."""

    cert: Path
    key: Path
    ca: Path


def cache_directory() -> Path:
    """The per-user cache folder: ``$XDG_CACHE_HOME/nghttp2-cffi`` (default
    ``~/.cache/nghttp2-cffi``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nghttp2-cffi"


def development_certificate(directory: Optional[Path] = None) -> DevelopmentCertificate:
    """The development certificate kept in ``directory`` (default
    :func:`cache_directory`): made once (a small CA and a leaf certificate
    it signs), reused while it stays valid for another day."""
    directory = Path(directory or cache_directory())
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = DevelopmentCertificate(
        directory / "dev-cert.pem", directory / "dev-key.pem", directory / "dev-ca.pem"
    )
    with open(directory / ".lock", "w") as lock:  # two servers starting at once
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not a Unix
            pass
        if not _still_valid(files):
            _write_development_ca(files)
    return files


def development_context(directory: Optional[Path] = None) -> ssl.SSLContext:
    """A server context with the development certificate for localhost
    (see :func:`development_certificate`).

    Made with the ``cryptography`` package when it is installed, else with
    the ``openssl`` command.  Never use it beyond development.
    """
    files = development_certificate(directory)
    return server_context(str(files.cert), str(files.key))


def _still_valid(files: DevelopmentCertificate) -> bool:
    if not all(path.is_file() for path in files):
        return False
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            str(files.cert), str(files.key)
        )
    except (OSError, ssl.SSLError):
        return False
    try:
        from cryptography import x509
    except ImportError:
        return (
            shutil.which("openssl") is not None
            and subprocess.run(
                ["openssl", "x509", "-checkend", "86400", "-noout", "-in", str(files.cert)],
                capture_output=True,
            ).returncode
            == 0
        )
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    expires = getattr(cert, "not_valid_after_utc", None)  # cryptography 42+
    if expires is None:
        expires = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return expires - datetime.datetime.now(datetime.timezone.utc) > datetime.timedelta(days=1)


def _write_development_ca(files: DevelopmentCertificate) -> None:
    """A fresh CA and leaf certificate, written into place one file at a time
    (under the lock of :func:`development_certificate`)."""
    with tempfile.TemporaryDirectory(dir=files.ca.parent) as scratch:
        new = DevelopmentCertificate(*(Path(scratch) / p.name for p in files))
        try:
            _write_ca_with_cryptography(new)
        except ImportError:
            _write_ca_with_openssl(new, Path(scratch))
        new.key.chmod(0o600)
        for made, path in zip(new, files):
            os.replace(made, path)


def _write_ca_with_cryptography(files: DevelopmentCertificate) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=DEV_CERT_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nghttp2-cffi development CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    alt_names += [x509.IPAddress(ipaddress.ip_address(h)) for h in DEV_HOSTS[1:]]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    # The CA's key is dropped: nothing else is ever signed with it.


def _write_ca_with_openssl(files: DevelopmentCertificate, scratch: Path) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError(
            "a development certificate needs the 'cryptography' package or the "
            "'openssl' command; install one, pass --cert/--key, or use --no-tls"
        )
    ca_key, request, extensions = scratch / "ca-key.pem", scratch / "req.pem", scratch / "ext"
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    days = str(DEV_CERT_DAYS)
    extensions.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    for command in (
        ["req", "-x509", *curve, "-days", days, "-subj", "/CN=nghttp2-cffi development CA"]
        + ["-addext", "basicConstraints=critical,CA:TRUE,pathlen:0"]
        + ["-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"]
        + ["-keyout", str(ca_key), "-out", str(files.ca)],
        ["req", "-new", *curve, "-subj", "/CN=localhost"]
        + ["-keyout", str(files.key), "-out", str(request)],
        ["x509", "-req", "-in", str(request), "-CA", str(files.ca), "-CAkey", str(ca_key)]
        + ["-CAcreateserial", "-days", days, "-extfile", str(extensions)]
        + ["-out", str(files.cert)],
    ):
        subprocess.run(["openssl", *command], check=True, capture_output=True)


_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
#: RFC 4514 short names of the attributes ``getpeercert()`` spells out.
_RDN_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


def asgi_tls_extension(ssl_object: Any) -> Optional[Dict[str, Any]]:
    """The ASGI ``tls`` extension of a TLS connection's scopes (None for
    cleartext): ``client_cert_chain`` holds the client's certificate (PEM)
    when it sent one (``--ssl-ca-certs``); the server's certificate and the
    cipher suite's number are not exposed by Python's ssl module (None)."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    name = None
    if der:
        subject = (ssl_object.getpeercert() or {}).get("subject", ())
        name = ",".join(
            "+".join(f"{_RDN_NAMES.get(key, key)}={_escape_rdn(value)}" for key, value in rdn)
            for rdn in reversed(subject)
        )
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def _escape_rdn(value: str) -> str:
    escaped = "".join("\\" + c if c in ',+"\\<>;' else c for c in value)
    if escaped[:1] in ("#", " "):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped


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
