"""HTTPS sessions for the connectors: verified TLS always, against a chosen CA when given.

requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override a session's
`verify`, so a session meant to trust only the sandbox CA would silently use another bundle (and
fail) on machines that set them. The adapter below pins the CA per request instead, never lets
verification be turned off, and never sends a loopback request through a proxy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from scc_desktop import __version__

USER_AGENT = f"scc-desktop/{__version__}"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class PinnedCAAdapter(HTTPAdapter):
    """Verify every HTTPS request against `ca_file` (or the system store when None)."""

    def __init__(self, ca_file: str | Path | None, **kwargs: Any) -> None:
        self.ca_file = str(ca_file) if ca_file is not None else None
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self.ca_file is not None:
            kwargs["verify"] = self.ca_file
        elif kwargs.get("verify") is False:
            kwargs["verify"] = True  # verification is never turned off
        if urlsplit(request.url or "").hostname in LOOPBACK_HOSTS:
            kwargs["proxies"] = {}  # the sandbox on 127.0.0.1 is never reached through a proxy
        return super().send(request, **kwargs)


def https_session(ca_file: str | Path | None = None, pool_size: int = 10) -> requests.Session:
    """A requests.Session for API calls; with `ca_file`, it trusts that CA (the sandbox's)."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    if ca_file is not None:
        session.verify = str(ca_file)
    session.mount(
        "https://", PinnedCAAdapter(ca_file, pool_connections=pool_size, pool_maxsize=pool_size)
    )
    return session
