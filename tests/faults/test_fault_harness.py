"""Issue 7's fault harness: a first sync over the `demo` seed with faults on both services, then
repeated sessions (faults still on) until a session is quiet, bounded at MAX_SESSIONS; the final
state of both sides must equal a fault-free run's.

Faults (seeded per case, so a failing seed replays exactly): 500/503, 429 with Retry-After,
connections dropped with no response, Salesforce `UNABLE_TO_LOCK_ROW` and partial Collections
failures, Graph `$batch` partial failures, Salesforce writes that commit and then lose their
response (`lost_response_rate`), and every access token expired mid-way through the first session.

Short form (the normal suite): 3 seeds. Long form: `SCC_FAULTS_LONG=1 python -m pytest
tests/faults -p no:cacheprovider` (20 seeds). See docs/reliability.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scc_desktop.auth.credentials import MemoryBackend
from scc_desktop.context import AppContext
from scc_desktop.demo import DemoAccounts, start_demo
from scc_desktop.engine_runner import EngineRunner, SandboxConnections
from scc_desktop.net import https_session

LONG = os.environ.get("SCC_FAULTS_LONG") == "1"
SEEDS = list(range(1, 21)) if LONG else [1, 2, 3]
MAX_SESSIONS = 10

SALESFORCE_FAULTS = {
    "error_rate": 0.1,
    "throttle_rate": 0.05,
    "retry_after_s": 1,
    "drop_rate": 0.08,
    "lock_row_rate": 0.2,
    "partial_failure_rate": 0.1,
}
MICROSOFT_FAULTS = {
    "error_rate": 0.1,
    "throttle_rate": 0.05,
    "retry_after_s": 1,
    "drop_rate": 0.08,
    "partial_failure_rate": 0.1,
}
LOST_RESPONSE_RATE = 0.1
RE_BATCH_STATUS = re.compile(rb'"status":\s*([45]\d\d)')
TOKEN_EXPIRY_AFTER_S = 0.25

MAX_WAIT_S = 0.05

log = logging.getLogger(__name__)


def short_sleep(seconds: float) -> None:
    time.sleep(min(seconds, MAX_WAIT_S))


# --- normalized state of both sides ------------------------------------------------------------

SF_FIELDS = {
    "Contact": ("FirstName", "LastName", "Email", "Phone", "MobilePhone", "Title", "OwnerId"),
    "Event": ("Subject", "StartDateTime", "EndDateTime", "IsAllDayEvent", "Location", "OwnerId"),
    "Task": ("Subject", "ActivityDate", "Status", "Priority", "OwnerId", "IsClosed"),
}


def _key(row: dict[str, Any], names: tuple[str, ...]) -> str:
    return json.dumps([row.get(n) for n in names], sort_keys=True, default=str)


def snapshot(admin: Any, admin_url: str) -> dict[str, Counter[str]]:
    """Multisets (so duplicates show) of the fields that matter, without ids or timestamps."""
    state: dict[str, Counter[str]] = {}
    for sobject, names in SF_FIELDS.items():
        rows = admin.get(f"{admin_url}/salesforce/records", params={"type": sobject}).json()
        rows = rows["records"] if isinstance(rows, dict) else rows
        live = [r for r in rows if not r.get("IsDeleted")]
        state[f"salesforce.{sobject}"] = Counter(_key(r, names) for r in live)

    def dump(kind: str) -> list[dict[str, Any]]:
        return list(admin.get(f"{admin_url}/microsoft/dump", params={"kind": kind}).json())

    folders = {f["id"]: f.get("displayName") for f in dump("contactFolders")}
    lists = {t["id"]: t.get("displayName") for t in dump("lists")}
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
        for c in dump("contacts")
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
        for e in dump("events")
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
        for t in dump("tasks")
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


# --- one case ------------------------------------------------------------------------------------


def run_case(root: Path, seed: int | None) -> dict[str, Any]:
    """Sessions until quiet over a fresh profile and demo sandbox; faults when `seed` is given."""
    ctx = AppContext.open(
        root / "profile", secret_backend=MemoryBackend(), policy_path=root / "none.toml"
    )
    demo: DemoAccounts = start_demo(ctx.paths)
    admin = https_session(demo.ca_file)
    url = demo.server.admin_url
    sessions: list[dict[str, Any]] = []
    tally: Counter[str] = Counter()
    serve = demo.server._serve

    def counted(service: Any, request: Any) -> Any:
        try:
            response = serve(service, request)
        except Exception as exc:
            tally[f"{service.name} {type(exc).__name__}"] += 1
            raise
        if response.status_code >= 400:
            tally[f"{service.name} {response.status_code}"] += 1
            return response
        body = response.get_data()
        for code in (b"UNABLE_TO_LOCK_ROW", b"FIELD_CUSTOM_VALIDATION_EXCEPTION"):
            tally[f"{service.name} {code.decode()}"] += body.count(code)
        if b"$batch" in request.path.encode():
            for status in RE_BATCH_STATUS.findall(body):
                tally[f"{service.name} $batch item {status.decode()}"] += 1
        return response

    demo.server._serve = counted  # type: ignore[method-assign]
    try:
        if seed is not None:
            for service, profile in (
                ("salesforce", SALESFORCE_FAULTS),
                ("microsoft", MICROSOFT_FAULTS),
            ):
                body = {"service": service, "seed": seed * 100 + len(service), **profile}
                admin.post(f"{url}/faults", json=body).raise_for_status()
            admin.post(
                f"{url}/salesforce/settings", json={"lost_response_rate": LOST_RESPONSE_RATE}
            ).raise_for_status()
        connections = SandboxConnections(demo)
        clients = connections.connect(ctx)
        # The clients' backoff sleeps are injectable; cap them so the short form stays short.
        # The sandbox's faults are drawn per call, not per second, so this changes no outcome.
        clients.gateway.client.retry.sleep = short_sleep
        clients.mailbox.http.sleep = short_sleep
        runner = EngineRunner(ctx, connections)
        converged = False
        for number in range(1, MAX_SESSIONS + 1):
            timer = None
            if seed is not None and number == 1:

                def expire() -> None:
                    admin.post(f"{url}/salesforce/expire_tokens")
                    admin.post(f"{url}/microsoft/expire_tokens", json={})

                timer = threading.Timer(TOKEN_EXPIRY_AFTER_S, expire)
                timer.start()
            try:
                outcome = runner.run("faults", lambda text: None)
                record = {
                    "status": outcome.status,
                    "changes": outcome.changes,
                    "message": outcome.message,
                    "issues": len(outcome.summary.get("issues", []) or []),
                }
            except Exception as exc:  # a crash is a result the harness reports
                record = {"status": "crashed", "changes": -1, "message": repr(exc), "issues": 0}
            finally:
                if timer is not None:
                    timer.cancel()
                    timer.join()
            sessions.append(record)
            if record["status"] == "ok" and record["changes"] == 0 and number > 1:
                converged = True
                break
        if seed is not None:  # read the final state with the faults off
            admin.post(f"{url}/faults", json={}).raise_for_status()
        state = snapshot(admin, url)
    finally:
        admin.close()
        demo.stop()
    faults = {name: n for name, n in sorted(tally.items()) if n}
    return {"converged": converged, "sessions": sessions, "state": state, "faults": faults}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    os.umask(0o077)
    result = run_case(tmp_path_factory.mktemp("reference"), None)
    assert result["converged"], result["sessions"]
    yield result


@pytest.mark.parametrize("seed", SEEDS)
def test_faults_on_both_sides_converge_to_the_fault_free_state(
    seed: int, tmp_path: Path, reference: dict[str, Any]
) -> None:
    result = run_case(tmp_path, seed)
    sessions = result["sessions"]
    print(f"seed {seed}: faults {result['faults']}; sessions {sessions}")
    diff = differences(result["state"], reference["state"])
    problems = []
    if not result["converged"]:
        problems.append(f"not quiet after {MAX_SESSIONS} sessions: {sessions}")
    if diff:
        problems.append(f"state differs from the fault-free run ({len(diff)}):\n" + "\n".join(diff))
    assert not problems, f"seed {seed}: " + "\n".join(problems)
