"""The sandbox server core: loopback TLS trusted through its own CA, dispatch, faults, admin."""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.wrappers import Request, Response

from scc_desktop.net import https_session
from scc_desktop.sandbox.server import SandboxServer
from scc_desktop.sandbox.service import SandboxService, json_response


class EchoService(SandboxService):
    name = "echo"
    prefixes = ("/echo/",)

    def __init__(self, data_dir: Path, base_url: str) -> None:
        super().__init__(data_dir, base_url)
        self.seed = ""

    def handle(self, request: Request) -> Response:
        return json_response({"path": request.path, "seed": self.seed})

    def reset(self, seed: str, params: Mapping[str, Any]) -> None:
        self.seed = seed

    def is_empty(self) -> bool:
        return not self.seed

    def info(self) -> dict[str, Any]:
        return {"url": f"{self.base_url}/echo/"}

    def error_response(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return json_response([{"errorCode": code, "message": message}], status, headers)

    def endpoint_kind(self, request: Request) -> str:
        return request.path.split("/")[2] or "root"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(tmp_path / "sandbox", factories=[EchoService]) as running:
        yield running


@pytest.fixture
def http(server: SandboxServer) -> Iterator[requests.Session]:
    session = https_session(server.ca.ca_file)
    yield session
    session.close()


def test_serves_https_on_loopback_trusted_by_its_ca(
    server: SandboxServer, http: requests.Session
) -> None:
    assert server.base_url.startswith("https://127.0.0.1:")
    reply = http.get(f"{server.base_url}/echo/a")
    assert reply.json() == {"path": "/echo/a", "seed": "demo"}  # a fresh sandbox gets the demo seed
    with pytest.raises(requests.exceptions.SSLError):
        https_session().get(f"{server.base_url}/echo/a", timeout=5)  # the system store does not
    # REQUESTS_CA_BUNDLE in the environment must not override the pinned CA
    assert http.get(f"{server.base_url}/echo/a", verify=True).status_code == 200
    info = server.info()
    assert info["ca_file"] == str(server.ca.ca_file)
    assert info["echo"] == {"url": f"{server.base_url}/echo/"}
    context = ssl.create_default_context(cafile=info["ca_file"])
    assert context.get_ca_certs()


def test_ca_persists_across_restarts(tmp_path: Path) -> None:
    with SandboxServer(tmp_path / "s", factories=[EchoService]) as first:
        pem = first.ca.ca_file.read_bytes()
    with SandboxServer(tmp_path / "s", factories=[EchoService]) as second:
        assert second.ca.ca_file.read_bytes() == pem


def test_admin_reset_counters_and_unknown_paths(
    server: SandboxServer, http: requests.Session
) -> None:
    http.get(f"{server.base_url}/echo/x")
    http.get(f"{server.base_url}/echo/x")
    http.get(f"{server.base_url}/echo/y")
    counters = http.get(f"{server.admin_url}/counters").json()
    assert counters == {"echo": {"x": 2, "y": 1, "total": 3}}
    assert http.post(f"{server.admin_url}/reset", json={"seed": "empty"}).json()["ok"]
    assert http.get(f"{server.base_url}/echo/z").json()["seed"] == "empty"
    assert http.get(f"{server.admin_url}/counters").json() == {"echo": {"z": 1, "total": 1}}
    assert http.post(f"{server.admin_url}/reset", json={"seed": "nope"}).status_code == 400
    assert http.get(f"{server.base_url}/elsewhere").status_code == 404


def test_faults_use_the_service_error_shape(server: SandboxServer, http: requests.Session) -> None:
    reply = http.post(
        f"{server.admin_url}/faults",
        json={"service": "echo", "throttle_rate": 1.0, "retry_after_s": 3},
    )
    assert reply.json()["echo"]["throttle_rate"] == 1.0
    throttled = http.get(f"{server.base_url}/echo/a")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "3"
    assert throttled.json()[0]["errorCode"] == "TooManyRequests"
    http.post(f"{server.admin_url}/faults", json={"service": "echo", "error_rate": 1.0, "seed": 7})
    assert http.get(f"{server.base_url}/echo/a").status_code in (500, 503)
    http.post(f"{server.admin_url}/faults", json={"service": "echo", "drop_rate": 1.0})
    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(f"{server.base_url}/echo/a")
    http.post(f"{server.admin_url}/faults", json={"service": "echo"})
    assert http.get(f"{server.base_url}/echo/a").status_code == 200
    assert http.post(f"{server.admin_url}/faults", json={"bogus": 1}).status_code == 400


def test_seeded_faults_are_reproducible(server: SandboxServer, http: requests.Session) -> None:
    def pattern() -> list[int]:
        http.post(
            f"{server.admin_url}/faults", json={"service": "echo", "error_rate": 0.5, "seed": 42}
        )
        return [http.get(f"{server.base_url}/echo/r").status_code for _ in range(20)]

    first = pattern()
    assert first == pattern()
    assert 200 in first and any(code >= 500 for code in first)
