"""Fixtures for the Salesforce emulator tests: one HTTPS sandbox per module, a fresh demo org per
test, a signed-in simple-salesforce client.

Fixture names start with `sf_` (and the helpers live in sf_emulator_harness.py) so nothing
collides with the Microsoft emulator's fixtures in the same folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sf_emulator_harness import SfEnv
from simple_salesforce import Salesforce

from scc_desktop.sandbox.salesforce.service import SalesforceService
from scc_desktop.sandbox.server import SandboxServer


@pytest.fixture(scope="module")
def sf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    server = SandboxServer(
        tmp_path_factory.mktemp("sf-emulator"), port=0, seed="demo", factories=[SalesforceService]
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sf_env(sf_server: SandboxServer) -> SfEnv:
    env = SfEnv(sf_server)
    env.admin("POST", "reset", {"seed": "demo"})
    env.admin("POST", "faults", {})
    return env


@pytest.fixture
def sf_token(sf_env: SfEnv) -> dict[str, Any]:
    return sf_env.login()


@pytest.fixture
def sf(sf_env: SfEnv, sf_token: dict[str, Any]) -> Salesforce:
    return sf_env.client(sf_token["access_token"])
