"""`scc-desktop sandbox serve` as issue 3 and 4 describe it: one JSON line, then real clients
(simple-salesforce in direct mode, msal) work against it over verified TLS."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msal
import pytest
from simple_salesforce import Salesforce

from scc_desktop.auth.credentials import CredentialStore, MemoryBackend
from scc_desktop.auth.salesforce import SalesforceAuth, SalesforceOAuthConfig, sandbox_opener
from scc_desktop.net import https_session


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scc_desktop",
            "sandbox",
            "serve",
            "--seed",
            "demo",
            "--data",
            str(tmp_path / "sandbox"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else ""
        yield json.loads(line)
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0


def test_the_json_line_and_simple_salesforce_in_direct_mode(served: dict[str, Any]) -> None:
    assert served["base_url"].startswith("https://127.0.0.1:")
    assert Path(served["ca_file"]).exists()
    for key in ("login_url", "instance_url", "client_id"):
        assert served["salesforce"][key]
    for key in ("authority", "graph_url", "client_id"):
        assert served["microsoft"][key]

    auth = SalesforceAuth(
        SalesforceOAuthConfig.for_sandbox(served), CredentialStore("e2e", MemoryBackend())
    )
    auth.sign_in(open_browser=sandbox_opener(served["ca_file"]), timeout=30)
    session = https_session(served["ca_file"])
    sf = Salesforce(
        instance_url=served["salesforce"]["instance_url"],
        session_id=auth.access_token(),
        session=session,
        version=served["salesforce"]["api_version"],
    )
    result = sf.query("SELECT Id, Email FROM Contact WHERE Email = 'tom.o\\'neil@globex.example'")
    assert result["totalSize"] == 1
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] >= 5


def test_msal_device_flow_against_the_served_identity(served: dict[str, Any]) -> None:
    ms = served["microsoft"]
    http = https_session(served["ca_file"])
    app = msal.PublicClientApplication(
        ms["client_id"], authority=ms["authority"], http_client=http, instance_discovery=False
    )
    flow = app.initiate_device_flow(scopes=["User.Read"])
    http.post(
        f"{served['admin_url']}/microsoft/approve_device", json={"user_code": flow["user_code"]}
    ).raise_for_status()
    token = app.acquire_token_by_device_flow(flow)
    assert "access_token" in token, token
    me = http.get(
        f"{ms['graph_url']}/me", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert me.json()["userPrincipalName"] == ms["username"]
