"""Fixtures of the Salesforce side's tests: the demo sandbox signed in, a gateway, repositories.

Imported by the test modules (not a conftest, which the mailbox side's tests own). The sandbox
runs once per module; each test reaches it through a fresh gateway so call counts start at zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scc_desktop.demo import DemoAccounts, start_demo
from scc_desktop.net import https_session
from scc_desktop.paths import resolve_profile
from scc_desktop.salesforce.gateway import SalesforceGateway, connect
from scc_desktop.settings import SETTINGS, SettingsSnapshot, Value
from scc_desktop.store.db import Database, open_database
from scc_desktop.sync.fields import Kind
from scc_desktop.sync.ports import SideRepository
from scc_desktop.sync.salesforce_side import salesforce_repositories


@dataclass
class SfSide:
    demo: DemoAccounts
    db: Database
    gateway: SalesforceGateway
    repos: dict[Kind, SideRepository]

    @property
    def user_id(self) -> str:
        return self.demo.salesforce_account.user_id

    def admin_get(self, path: str, **params: Any) -> Any:
        http = https_session(self.demo.ca_file)
        try:
            reply = http.get(f"{self.demo.server.admin_url}/{path}", params=params, timeout=30)
            assert reply.status_code == 200, reply.text
            return reply.json()
        finally:
            http.close()

    def counters(self) -> dict[str, int]:
        return dict(self.admin_get("counters").get("salesforce", {}))


def settings_snapshot(**changes: Value) -> SettingsSnapshot:
    values: dict[str, Value] = {decl.key: decl.default for decl in SETTINGS}
    values.update(changes)
    return SettingsSnapshot(values)


@pytest.fixture(scope="module")
def sf_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoAccounts, Path]]:
    root = tmp_path_factory.mktemp("sf-side")
    demo = start_demo(resolve_profile(root / "p").ensure(), seed="demo")
    yield demo, root
    demo.stop()


@pytest.fixture
def sf_side(sf_demo: tuple[DemoAccounts, Path], tmp_path: Path) -> Iterator[SfSide]:
    demo, _root = sf_demo
    db = open_database(tmp_path / "sf-state.sqlite3")
    account = demo.salesforce_account
    gateway = connect(demo.salesforce, db=db, org_id=account.org_id, user_id=account.user_id)
    repos = salesforce_repositories(
        gateway, settings_snapshot(), user_id=account.user_id, now=datetime.now(UTC)
    )
    yield SfSide(demo, db, gateway, repos)
    db.close()
