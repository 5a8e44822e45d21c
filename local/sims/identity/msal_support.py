"""Pointing MSAL for Python at the simulator.

MSAL builds its user-realm lookup (done before every username/password grant) from the authority's
host name without the port: ``https://127.0.0.1/common/userrealm/...``. Real authorities never have
a port, so this only bites a loopback simulator. ``msal_session`` returns a requests.Session that
trusts the stack's CA and sends those port-less requests to the simulator's port; everything else
goes out unchanged. Pass it to MSAL as ``http_client=``.

"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter


class _AddPortAdapter(HTTPAdapter):
    def __init__(self, netloc: str) -> None:
        super().__init__()
        self._netloc = netloc

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit(parts._replace(netloc=self._netloc))
        return super().send(request, **kwargs)


def msal_session(identity_url: str, ca_bundle: str) -> requests.Session:
    """A session for MSAL against the identity simulator at ``identity_url`` (``https://127.0.0.1:PORT``)."""
    parts = urlsplit(identity_url)
    session = requests.Session()
    session.verify = ca_bundle
    # requests lets REQUESTS_CA_BUNDLE (set on these machines) override Session.verify; the simulator is
    # on loopback, so no environment setting (proxy, CA bundle, netrc) applies to it anyway.
    session.trust_env = False
    if parts.port is not None and parts.hostname:
        # Only URLs with no port at all match this prefix; the simulator's own URLs carry their port.
        session.mount(f"https://{parts.hostname}/", _AddPortAdapter(parts.netloc))
    return session
