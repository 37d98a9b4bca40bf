"""HTTPS sessions for the connectors: verified TLS always, against a chosen CA when given.

requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override a session's
`verify`, so a session meant to trust only the sandbox CA would silently use another bundle (and
fail) on machines that set them. The adapter below pins the CA per request instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from scc_desktop import __version__

USER_AGENT = f"scc-desktop/{__version__}"


class PinnedCAAdapter(HTTPAdapter):
    """Verify every HTTPS request against `ca_file`, whatever the environment says."""

    def __init__(self, ca_file: str | Path, **kwargs: Any) -> None:
        self.ca_file = str(ca_file)
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["verify"] = self.ca_file
        return super().send(request, **kwargs)


def https_session(ca_file: str | Path | None = None, pool_size: int = 10) -> requests.Session:
    """A requests.Session for API calls; with `ca_file`, it trusts that CA (the sandbox's)."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    if ca_file is not None:
        session.verify = str(ca_file)
        adapter: HTTPAdapter = PinnedCAAdapter(
            ca_file, pool_connections=pool_size, pool_maxsize=pool_size
        )
    else:
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    return session
