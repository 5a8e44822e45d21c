"""A throw-away certificate authority for the simulators' loopback HTTPS.

trustme makes a CA and a server certificate for ``localhost``/``127.0.0.1``; the files are
written once per stack so that every client (MSAL, requests, msgraph-sdk, the app itself)
can be pointed at the same ``ca.pem`` through settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files one stack uses."""

    ca_bundle: Path
    cert_chain: Path
    private_key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a CA and a loopback server certificate under ``directory`` and return their paths."""
    import trustme

    from local.private_files import write_private_bytes

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Syncro-Outlook sync local CA")
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    files = TlsFiles(
        ca_bundle=directory / "ca.pem",
        cert_chain=directory / "server-chain.pem",
        private_key=directory / "server-key.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca_bundle))
    for index, blob in enumerate(server.cert_chain_pems):
        blob.write_to_path(str(files.cert_chain), append=index > 0)
    write_private_bytes(files.private_key, server.private_key_pem.bytes())
    return files
