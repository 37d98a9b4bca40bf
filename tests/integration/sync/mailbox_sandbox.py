"""Mailbox-side test helpers and fixtures: the sandbox signed in through the real flows
(`start_demo`), fresh GraphMailbox clients (the adapter's, the user's), the emulator's admin API
and settings snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from scc_desktop.demo import DemoAccounts, start_demo
from scc_desktop.mailbox.graph import GraphMailbox
from scc_desktop.net import https_session
from scc_desktop.paths import resolve_profile
from scc_desktop.settings import SETTINGS, SettingsSnapshot, Value


def make_settings(**values: Value) -> SettingsSnapshot:
    """Defaults overridden by `values` (unknown keys are a test bug)."""
    merged: dict[str, Value] = {s.key: s.default for s in SETTINGS}
    unknown = set(values) - set(merged)
    assert not unknown, unknown
    merged.update(values)
    return SettingsSnapshot(merged)


@dataclass
class MailboxSandbox:
    accounts: DemoAccounts
    admin_url: str
    session: requests.Session

    def mailbox(self) -> GraphMailbox:
        """A fresh client: its call counts start at zero."""
        return GraphMailbox.connect(
            self.accounts.graph_url, self.accounts.microsoft, ca_file=str(self.accounts.ca_file)
        )

    def counters(self) -> dict[str, Any]:
        r = self.session.get(f"{self.admin_url}/counters", timeout=30)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def reset_counters(self) -> None:
        r = self.session.post(f"{self.admin_url}/counters/reset", json={}, timeout=30)
        assert r.status_code < 300, r.text

    def dump(self, kind: str) -> list[dict[str, Any]]:
        r = self.session.get(f"{self.admin_url}/microsoft/dump", params={"kind": kind}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def invalidate_delta_tokens(self) -> None:
        r = self.session.post(
            f"{self.admin_url}/microsoft/invalidate_delta_tokens", json={}, timeout=30
        )
        assert r.status_code < 300, r.text


def _sandbox(tmp_path: Path, seed: str) -> Iterator[MailboxSandbox]:
    accounts = start_demo(resolve_profile(tmp_path / "p").ensure(), seed=seed)
    try:
        yield MailboxSandbox(
            accounts, accounts.server.admin_url, https_session(str(accounts.ca_file))
        )
    finally:
        accounts.stop()


@pytest.fixture
def demo_sandbox(tmp_path: Path) -> Iterator[MailboxSandbox]:
    """The 'demo' seed: meetings, appointments, a private item, a series, categorized items."""
    yield from _sandbox(tmp_path, "demo")


@pytest.fixture
def empty_sandbox(tmp_path: Path) -> Iterator[MailboxSandbox]:
    yield from _sandbox(tmp_path, "empty")
