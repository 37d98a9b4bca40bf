"""Issue 6's first acceptance point, the way a user meets it: on the demo sandbox with
Auto-Sharing on (and Globex blacklisted), `sync --once --sandbox --json` shares exactly the demo
messages whose participants match Contacts or Leads - none from the blacklisted domain, none
internal-only - and a second run shares nothing new."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from scc_desktop.net import https_session
from scc_desktop.sandbox.server import SandboxServer

# The demo mailbox's messages within the first enabling's 6 days whose participants match
# Contacts or Leads (the reply and Jane's answer share a subject), plus Olivia's, categorized
# "Salesforce"; Globex's is left out by the blacklist.
SHARED = {
    "RE: Fleet renewal - pricing questions": 2,
    "Intro - Hooli IT modernization": 1,
    "Initech security review follow-up": 1,
    "Umbrella security suite - next steps": 1,
}
NOT_SHARED = {
    "Globex purchase order",  # Maria Garcia is a Contact, but globex.example is blacklisted
    "Fleet renewal - pricing questions",  # older than the first enabling's 6 days
    "Notes from the Initech call",  # internal only (colleagues)
    "Pipeline review moved",  # internal only
    "Quick question about your product",  # a stranger: no Contact or Lead
    "VendorCo: your monthly statement",  # no Contact or Lead
}


def cli(profile: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "scc_desktop", "--profile", str(profile), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def sync(profile: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(cli(profile, "sync", "--once", "--sandbox", "--json"))
    return summary


def test_demo_autoshare_shares_exactly_the_matching_messages_and_a_second_run_nothing(
    tmp_path: Path,
) -> None:
    profile = tmp_path / "emails"
    cli(profile, "settings", "set", "email_autoshare", "on")
    cli(profile, "settings", "set", "blacklist", "globex.example")

    first = sync(profile)
    assert first["status"] == "ok", first
    assert first["email"]["shared"] == sum(SHARED.values()), first["email"]
    assert first["email"]["failed"] == 0
    second = sync(profile)
    assert second["status"] == "ok", second
    assert second["email"]["shared"] == 0, second["email"]

    with SandboxServer(profile / "data" / "sandbox") as server:
        http = https_session(server.ca.ca_file)
        try:
            reply = http.get(
                f"{server.admin_url}/salesforce/records", params={"type": "EmailMessage"}
            )
            records = [r for r in reply.json()["records"] if not r.get("IsDeleted")]
        finally:
            http.close()
    subjects = [str(r["Subject"]) for r in records]
    assert {s: subjects.count(s) for s in set(subjects)} == SHARED
    assert not NOT_SHARED & set(subjects)
