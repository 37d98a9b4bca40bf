"""Issue 5's acceptance, the way a new user meets it: `sync --once --sandbox --json` on a fresh
profile links the demo org and the demo mailbox both ways; a second run changes nothing and costs
at most one call per delta stream and per Salesforce object kind."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scc_desktop.net import https_session
from scc_desktop.sandbox.server import SandboxServer


def sync(profile: Path) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scc_desktop",
            "--profile",
            str(profile),
            "sync",
            "--once",
            "--sandbox",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def written(summary: dict[str, Any]) -> int:
    return sum(
        n for sides in summary["counts"].values() for side in sides.values() for n in side.values()
    )


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("+0000", "+00:00").replace("Z", "+00:00"))


def test_first_session_links_both_ways_and_the_second_is_quiet(tmp_path: Path) -> None:
    profile = tmp_path / "fresh"
    first = sync(profile)
    assert first["status"] == "ok", first
    assert first["issues"] == []
    assert set(first["counts"]) == {"contact", "event", "task"}
    assert written(first) > 0
    for key in ("api_calls", "duration_s"):
        assert key in first

    second = sync(profile)
    assert second["status"] == "ok"
    assert written(second) == 0, second["counts"]
    assert second["changes"] == 0
    # one call per Salesforce object kind; one per mailbox stream: the contacts folder delta,
    # the categorized-contacts list, the calendar window delta, the To Do list delta, and the
    # Inbox, Sent Items and "Salesforce Emails" deltas of the email stage
    assert second["api_calls"]["salesforce"] <= 3, second["api_calls"]
    assert second["api_calls"]["graph"] <= 7, second["api_calls"]

    # What the two sides hold now, read from the sandbox's own data.
    with SandboxServer(profile / "data" / "sandbox") as server:
        http = https_session(server.ca.ca_file)

        def sf(sobject: str) -> list[dict[str, Any]]:
            reply = http.get(f"{server.admin_url}/salesforce/records", params={"type": sobject})
            body = reply.json()
            rows = body["records"] if isinstance(body, dict) else body
            return [r for r in rows if not r.get("IsDeleted")]

        def mailbox(kind: str) -> list[dict[str, Any]]:
            return list(
                http.get(f"{server.admin_url}/microsoft/dump", params={"kind": kind}).json()
            )

        alex = next(u["Id"] for u in sf("User") if u["Email"] == "alex.morgan@northwind.example")
        now = datetime.now(UTC)
        start, end = now - timedelta(days=14), now + timedelta(days=60)

        mb_contacts = mailbox("contacts")
        mb_emails = {e["address"].lower() for c in mb_contacts for e in c.get("emailAddresses", [])}
        sf_contacts = sf("Contact")
        mine = [c for c in sf_contacts if c["OwnerId"] == alex]
        assert mine and all(c["Email"].lower() in mb_emails for c in mine)
        sf_emails = {(c.get("Email") or "").lower() for c in sf_contacts}
        shared = [c for c in mb_contacts if "Salesforce" in c.get("categories", [])]
        assert shared and all(
            e["address"].lower() in sf_emails for c in shared for e in c["emailAddresses"]
        )

        mb_subjects = {e.get("subject") for e in mailbox("events")}
        sf_events = [
            e
            for e in sf("Event")
            if e["OwnerId"] == alex and start <= parse(e["StartDateTime"]) <= end
        ]
        assert sf_events and all(e["Subject"] in mb_subjects for e in sf_events)
        sf_subjects = {e["Subject"] for e in sf("Event")}
        categorized = [
            e
            for e in mailbox("events")
            if "Salesforce" in e.get("categories", [])
            and not e.get("seriesMasterId")
            and e.get("sensitivity", "normal") == "normal"
        ]
        assert categorized and all(e["subject"] in sf_subjects for e in categorized)

        todo = {t["title"] for t in mailbox("tasks")}
        open_tasks = [
            t
            for t in sf("Task")
            if t["OwnerId"] == alex and not t.get("IsClosed") and t.get("TaskSubtype") != "Email"
        ]
        assert open_tasks and all(t["Subject"] in todo for t in open_tasks)
        http.close()


def settings_set(profile: Path, key: str, value: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "scc_desktop",
            "--profile",
            str(profile),
            "settings",
            "set",
            key,
            value,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_a_switch_turned_on_applies_at_the_next_session_and_off_deletes_nothing(
    tmp_path: Path,
) -> None:
    profile = tmp_path / "switches"
    sync(profile)
    settings_set(profile, "meetings_autoshare", "on")
    shared = sync(profile)
    assert shared["status"] == "ok"
    assert shared["counts"]["event"]["salesforce"]["created"] > 0  # meetings with attendees
    assert written(sync(profile)) == 0
    settings_set(profile, "meetings_autoshare", "off")
    after = sync(profile)
    assert after["counts"]["event"]["salesforce"]["deleted"] == 0
    assert after["counts"]["event"]["mailbox"]["deleted"] == 0
    assert written(sync(profile)) == 0
