"""The replica's self-signed TLS certificate, made once per site folder.

One certificate whose subject alternative names cover every replica host
(and localhost), so ``CONNECT finews.withounder.com:443`` and the other hosts
can all be served from one listening socket. Clients connect with
verification off (tests) or trust this file explicitly.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from newscrawl.replica.site import ALIAS_HOST, MAIN_HOST, OLD_SHARE_HOST, SHARE_HOST

logger = logging.getLogger(__name__)

#: hosts the certificate is valid for
CERT_HOSTS = (MAIN_HOST, ALIAS_HOST, SHARE_HOST, OLD_SHARE_HOST, "localhost")
#: where the key and certificate live inside a site folder (one PEM file)
CERT_FILE = Path("tls") / "replica.pem"


def _make_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, MAIN_HOST)])
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in CERT_HOSTS]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


def ensure_certificate(site_dir: Path) -> Path:
    """The site's PEM file (key + certificate), created if missing.

    Written to a temporary file and renamed, so two servers starting on the
    same folder never read half a file.
    """
    path = site_dir / CERT_FILE
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".replica-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_make_pem())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    logger.info("created TLS certificate %s", path)
    return path


def server_context(site_dir: Path) -> ssl.SSLContext:
    """A server-side TLS context with the site's certificate (HTTP/1.1 only)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(ensure_certificate(site_dir)))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
