"""A self-signed certificate made with the openssl command, for the HTTPS tests."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deploy.system import require


@dataclass(frozen=True)
class Certificate:
    cert: Path  # PEM chain (here: the certificate alone), as KITTEH_TLS_CERT
    key: Path  # PEM private key, as KITTEH_TLS_KEY

    def client_context(self) -> ssl.SSLContext:
        """A client that trusts this certificate and nothing else."""
        return ssl.create_default_context(cafile=str(self.cert))


def self_signed(directory: Path, names: list[str]) -> Certificate:
    """An ECDSA P-256 certificate for ``names`` (host names or IP addresses), valid 2 days."""
    openssl = require("openssl")["openssl"]
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    subject_names = ",".join(f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in names)
    subprocess.run([str(openssl), "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                    "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={subject_names}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return Certificate(cert, key)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# The two names of one gateway in the HTTPS + files origin tests (reached on 127.0.0.1).
PAGES_HOST = "cats.kitteh.test"
FILES_HOST = "files.kitteh.test"


def origins_env(env: dict[str, str], certificate: Certificate, http_port: int) -> dict[str, str]:
    """A stack_env() made HTTPS (with a redirecting HTTP port) with pages on PAGES_HOST and
    files on FILES_HOST, both on the gateway's port."""
    port = env["KITTEH_PORT"]
    return {**env, "KITTEH_TLS_CERT": str(certificate.cert), "KITTEH_TLS_KEY": str(certificate.key),
            "KITTEH_HTTP_PORT": str(http_port),
            "KITTEH_PUBLIC_URL": f"https://{PAGES_HOST}:{port}",
            "KITTEH_FILES_URL": f"https://{FILES_HOST}:{port}"}
