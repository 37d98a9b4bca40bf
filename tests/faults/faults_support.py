"""Shared by the issue-7 harnesses (not a test module): both sides' state as normalized
multisets, read from the sandbox's admin dumps, so that a duplicate shows as an extra copy and a
loss as a missing one; and helpers to run the real CLI on a profile whose sandbox lives in it.

The normalization keeps the fields that sync and drops ids and timestamps (folder and list names
instead of ids; an email's attachments and relations keyed by the email's subject and date). The
harnesses compare copies of one sandbox's data (`copy_sandbox`): the seeds date their items from
the minute they are made and draw fresh Message-IDs, so two separately seeded sandboxes differ.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

SF_FIELDS = {
    "Contact": ("FirstName", "LastName", "Email", "Phone", "MobilePhone", "Title", "OwnerId"),
    "Event": ("Subject", "StartDateTime", "EndDateTime", "IsAllDayEvent", "Location", "OwnerId"),
    "Task": ("Subject", "ActivityDate", "Status", "Priority", "OwnerId", "IsClosed", "TaskSubtype"),
    "EmailMessage": (
        "Subject",
        "FromAddress",
        "ToAddress",
        "CcAddress",
        "MessageDate",
        "Incoming",
        "HasAttachment",
        "Status",
    ),
}
EMAIL_KINDS = ("salesforce.EmailMessage", "salesforce.EmailTask", "salesforce.EmailFile")


def _key(row: dict[str, Any], names: tuple[str, ...]) -> str:
    return json.dumps([row.get(n) for n in names], sort_keys=True, default=str)


def sf_rows(admin: Any, admin_url: str, sobject: str) -> list[dict[str, Any]]:
    reply = admin.get(f"{admin_url}/salesforce/records", params={"type": sobject}, timeout=120)
    reply.raise_for_status()
    rows = reply.json()
    rows = rows["records"] if isinstance(rows, dict) else rows
    return [r for r in rows if not r.get("IsDeleted")]


def mailbox_dump(admin: Any, admin_url: str, kind: str) -> list[dict[str, Any]]:
    reply = admin.get(f"{admin_url}/microsoft/dump", params={"kind": kind}, timeout=120)
    reply.raise_for_status()
    return list(reply.json())


def snapshot(admin: Any, admin_url: str) -> dict[str, Counter[str]]:
    """Multisets (so duplicates show) of the fields that matter, without ids or timestamps."""
    state: dict[str, Counter[str]] = {}
    rows = {sobject: sf_rows(admin, admin_url, sobject) for sobject in SF_FIELDS}
    for sobject, names in SF_FIELDS.items():
        state[f"salesforce.{sobject}"] = Counter(_key(r, names) for r in rows[sobject])
    # The saved emails: the Task of each (Enhanced Email's or the plain Task), and the files and
    # relations hanging off it, named by the email's subject and date.
    emails = {r["Id"]: r for r in rows["EmailMessage"]}
    activity_of = {r.get("ActivityId"): r for r in rows["EmailMessage"] if r.get("ActivityId")}
    email_tasks = {r["Id"]: r for r in rows["Task"] if r.get("TaskSubtype") == "Email"}
    state["salesforce.EmailTask"] = Counter(
        json.dumps(
            [
                t.get("Subject"),
                t.get("ActivityDate"),
                (activity_of.get(t["Id"]) or {}).get("MessageDate"),
            ]
        )
        for t in email_tasks.values()
    )

    def parent_name(parent: Any) -> str:
        if parent in emails:
            email = emails[parent]
            return f"email {email.get('Subject')} {email.get('MessageDate')}"
        if parent in email_tasks:
            task = email_tasks[parent]
            return f"task {task.get('Subject')} {task.get('ActivityDate')}"
        return "other"

    files: Counter[str] = Counter()
    for version in sf_rows(admin, admin_url, "ContentVersion"):
        parent = parent_name(version.get("FirstPublishLocationId"))
        if parent != "other":
            files[json.dumps(["file", version.get("Title"), parent])] += 1
    for attachment in sf_rows(admin, admin_url, "Attachment"):
        parent = parent_name(attachment.get("ParentId"))
        if parent != "other":
            files[json.dumps(["attachment", attachment.get("Name"), parent])] += 1
    for relation in sf_rows(admin, admin_url, "EmailMessageRelation"):
        files[
            json.dumps(
                [
                    "relation",
                    (relation.get("RelationAddress") or "").lower(),
                    relation.get("RelationType"),
                    parent_name(relation.get("EmailMessageId")),
                ]
            )
        ] += 1
    state["salesforce.EmailFile"] = files

    folders = {
        f["id"]: f.get("displayName") for f in mailbox_dump(admin, admin_url, "contactFolders")
    }
    lists = {t["id"]: t.get("displayName") for t in mailbox_dump(admin, admin_url, "lists")}
    state["mailbox.contacts"] = Counter(
        json.dumps(
            [
                c.get("givenName"),
                c.get("surname"),
                sorted(e.get("address", "").lower() for e in c.get("emailAddresses") or []),
                c.get("jobTitle"),
                c.get("companyName"),
                sorted(c.get("categories") or []),
                folders.get(c.get("parent"), "(default)"),
            ]
        )
        for c in mailbox_dump(admin, admin_url, "contacts")
    )
    state["mailbox.events"] = Counter(
        json.dumps(
            [
                e.get("subject"),
                e.get("start"),
                e.get("end"),
                e.get("isAllDay"),
                sorted(e.get("categories") or []),
                e.get("sensitivity"),
                e.get("showAs"),
                e.get("type"),
            ],
            sort_keys=True,
        )
        for e in mailbox_dump(admin, admin_url, "events")
    )
    state["mailbox.tasks"] = Counter(
        json.dumps(
            [
                t.get("title"),
                t.get("status"),
                t.get("dueDateTime"),
                lists.get(t.get("parent"), t.get("parent")),
            ],
            sort_keys=True,
        )
        for t in mailbox_dump(admin, admin_url, "tasks")
    )
    return state


def differences(got: dict[str, Counter[str]], want: dict[str, Counter[str]]) -> list[str]:
    lines = []
    for name in sorted(set(got) | set(want)):
        extra = got.get(name, Counter()) - want.get(name, Counter())
        missing = want.get(name, Counter()) - got.get(name, Counter())
        for item, n in sorted(extra.items()):
            lines.append(f"{name}: {n} extra {item}")
        for item, n in sorted(missing.items()):
            lines.append(f"{name}: {n} missing {item}")
    return lines


def duplicated(state: dict[str, Counter[str]]) -> list[str]:
    """Items that must be unique on their own but occur twice: a saved email (by subject, date and
    addresses), its files, a synced contact in the app's folder (by address)."""
    lines = []
    for name in ("salesforce.EmailMessage", "salesforce.EmailTask", "salesforce.EmailFile"):
        for item, n in state.get(name, Counter()).items():
            if n > 1:
                lines.append(f"{name}: {n} copies of {item}")
    addresses: Counter[str] = Counter()
    for item, n in state.get("mailbox.contacts", Counter()).items():
        fields = json.loads(item)
        if fields[-1] == "Salesforce Contacts":
            for address in fields[2]:
                addresses[address] += n
    lines += [f"mailbox.contacts: {n} contacts with {a}" for a, n in addresses.items() if n > 1]
    return lines


def make_sandbox_template(data_dir: Path, seed: str = "demo") -> Path:
    """A seeded sandbox data folder, to be copied into each profile (`copy_sandbox`)."""
    from scc_desktop.sandbox.server import SandboxServer

    with SandboxServer(data_dir, seed=seed):  # started, so that stop() returns
        pass
    return data_dir


def copy_sandbox(template: Path, profile: Path) -> None:
    """The profile's sandbox starts as a copy of `template` (same records, ids and dates)."""
    shutil.copytree(template, profile / "data" / "sandbox")


def summarize(state: dict[str, Counter[str]]) -> dict[str, int]:
    return {name: sum(items.values()) for name, items in sorted(state.items())}


# --- the real CLI on a profile -------------------------------------------------------------------


def cli(profile: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scc_desktop", "--profile", str(profile), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def sync_once(profile: Path) -> dict[str, Any]:
    """`sync --once --sandbox --json` to completion; its JSON summary (and its stderr)."""
    result = cli(profile, "sync", "--once", "--sandbox", "--json")
    try:
        summary: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        summary = {"status": "no-json", "stdout": result.stdout[-2000:]}
    summary["_returncode"] = result.returncode
    summary["_stderr"] = result.stderr
    return summary


def sync_until_quiet(profile: Path, limit: int = 6) -> list[dict[str, Any]]:
    """Sessions until one is ok with no change (after at least one): what the tray would do."""
    runs = []
    for _ in range(limit):
        summary = sync_once(profile)
        runs.append(summary)
        if summary.get("status") == "ok" and summary.get("changes") == 0 and len(runs) > 1:
            break
    return runs


def short(runs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(status, changes, exit code) per run, and the end of stderr for a run that failed."""
    return [
        (r.get("status"), r.get("changes"), r.get("_returncode"))
        + ((r.get("_stderr", "")[-600:],) if r.get("_returncode") else ())
        for r in runs
    ]
