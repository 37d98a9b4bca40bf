"""The email stage against the sandbox over HTTPS with the real clients (`start_demo`).

`EmailHarness.run(**settings)` runs one email stage with the defaults overridden; `deliver`
puts a message in the mailbox through the Graph emulator's admin API; `records` dumps a
Salesforce object through the org's admin API.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from scc_desktop.demo import DemoAccounts, start_demo
from scc_desktop.mailbox.graph import GraphMailbox
from scc_desktop.net import https_session
from scc_desktop.paths import resolve_profile
from scc_desktop.salesforce.gateway import SalesforceGateway, connect
from scc_desktop.settings import SETTINGS, SettingsSnapshot, Value
from scc_desktop.store.db import Database, open_database
from scc_desktop.sync.email_session import EmailStageResult, run_email_stage
from scc_desktop.sync.state import SyncState

OWNER = "alex.morgan@northwind.example"


def settings(corporate: Sequence[str] = (), **values: Value) -> SettingsSnapshot:
    """Defaults overridden by `values`; `corporate` is the administrator's blacklist."""
    merged: dict[str, Value] = {s.key: s.default for s in SETTINGS}
    unknown = set(values) - set(merged)
    assert not unknown, unknown
    merged.update(values)
    return SettingsSnapshot(merged, corporate_blacklist=tuple(corporate))


@dataclass
class EmailHarness:
    demo: DemoAccounts
    db: Database
    state: SyncState
    gateway: SalesforceGateway
    mailbox: GraphMailbox
    admin: requests.Session

    @property
    def admin_url(self) -> str:
        return self.demo.server.admin_url

    @property
    def user_id(self) -> str:
        return self.demo.salesforce_account.user_id

    def run(self, corporate: Sequence[str] = (), **values: Value) -> EmailStageResult:
        run_id = self.state.start_run("test")
        return run_email_stage(
            self.gateway,
            self.mailbox,
            self.state,
            settings(corporate, **values),
            user_id=self.user_id,
            own_addresses=[OWNER],
            now=datetime.now(UTC),
            run_id=run_id,
        )

    def post(self, path: str, body: dict[str, Any]) -> Any:
        reply = self.admin.post(f"{self.admin_url}/{path}", json=body, timeout=30)
        assert reply.status_code < 300, reply.text
        return reply.json() if reply.content else None

    def deliver(self, **body: Any) -> dict[str, Any]:
        body.setdefault("folder", "inbox")
        body.setdefault("direction", "received" if body["folder"] == "inbox" else "sent")
        return dict(self.post("microsoft/deliver", body))

    def sf_settings(self, **values: Any) -> None:
        self.post("salesforce/settings", values)

    def records(self, sobject: str) -> list[dict[str, Any]]:
        reply = self.admin.get(
            f"{self.admin_url}/salesforce/records", params={"type": sobject}, timeout=30
        )
        assert reply.status_code == 200, reply.text
        return [r for r in reply.json()["records"] if not r.get("IsDeleted")]

    def create_record(self, sobject: str, fields: dict[str, Any]) -> str:
        return str(self.post("salesforce/records", {"type": sobject, "fields": fields})["id"])

    def id_of(self, sobject: str, name: str) -> str:
        found = [r["Id"] for r in self.records(sobject) if r.get("Name") == name]
        assert len(found) == 1, (sobject, name, found)
        return str(found[0])

    def contact_id(self, email: str) -> str:
        found = [r["Id"] for r in self.records("Contact") if r.get("Email") == email]
        assert len(found) == 1, (email, found)
        return str(found[0])

    def lead_id(self, email: str) -> str:
        found = [r["Id"] for r in self.records("Lead") if r.get("Email") == email]
        assert len(found) == 1, (email, found)
        return str(found[0])

    def activities(self, subject: str) -> list[dict[str, Any]]:
        """The EmailMessages with this subject, and the Tasks the stage wrote for it (the
        Tasks Enhanced Email makes for its EmailMessages are not counted twice)."""
        emails = [r for r in self.records("EmailMessage") if r.get("Subject") == subject]
        tasks = [
            r
            for r in self.records("Task")
            if r.get("Subject") == f"Email: {subject}" and r.get("SCC_Sync_Key__c")
        ]
        return emails + tasks

    def open_issues(self) -> list[str]:
        return [i.title for i in self.state.open_issues(kind="email")]


def _harness(tmp_path: Path, *, empty_mailbox: bool) -> Iterator[EmailHarness]:
    demo = start_demo(resolve_profile(tmp_path / "p").ensure(), seed="demo")
    admin = https_session(str(demo.ca_file))
    db = open_database(tmp_path / "state.sqlite3")
    try:
        harness = EmailHarness(
            demo,
            db,
            SyncState(db),
            connect(
                demo.salesforce,
                db=db,
                org_id=demo.salesforce_account.org_id,
                user_id=demo.salesforce_account.user_id,
            ),
            GraphMailbox.connect(
                demo.graph_url, demo.microsoft, ca_file=str(demo.ca_file), owner=OWNER
            ),
            admin,
        )
        if empty_mailbox:
            harness.post("reset", {"seed": "empty", "services": ["microsoft"]})
        yield harness
    finally:
        db.close()
        admin.close()
        demo.stop()


@pytest.fixture
def email_demo(tmp_path: Path) -> Iterator[EmailHarness]:
    """The demo org and the demo mailbox."""
    yield from _harness(tmp_path, empty_mailbox=False)


@pytest.fixture
def email_empty_mailbox(tmp_path: Path) -> Iterator[EmailHarness]:
    """The demo org and an empty mailbox: each case delivers its own messages."""
    yield from _harness(tmp_path, empty_mailbox=True)
