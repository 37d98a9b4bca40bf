"""A session over several kinds, and the JSON-able summary the CLI, tray and history show.

One kind failing (a side unreachable) does not stop the others; the session is then 'partial'.
The sync_runs row is opened first and closed last, so History shows interrupted sessions too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from scc_desktop.errors import NeedsUser
from scc_desktop.sync.engine import KindOptions, KindResult, ProgressCallback, sync_kind
from scc_desktop.sync.fields import Kind
from scc_desktop.sync.planner import Direction, Policy
from scc_desktop.sync.ports import CountsApiCalls, SideRepository
from scc_desktop.sync.state import SyncState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KindJob:
    """One kind to sync this session, with both sides' repositories and its settings."""

    kind: Kind
    mailbox: SideRepository
    salesforce: SideRepository
    options: KindOptions


ApiCallCounter = Callable[[], Mapping[str, int]]

_SETTING_PREFIX: Mapping[Kind, str] = {"contact": "contacts", "event": "calendar", "task": "tasks"}


def kind_options(kind: Kind, values: Mapping[str, object]) -> KindOptions:
    """A kind's options from a settings snapshot's values (`SettingsSnapshot.values`).

    Calendar has no deletion-propagation setting: a meeting deleted in the mailbox is cancelled
    in Salesforce too, as the issue only keeps contacts and tasks when deleted in the mailbox.
    """
    prefix = _SETTING_PREFIX[kind]
    propagate = values.get(f"{prefix}_propagate_deletes", kind == "event")
    return KindOptions(
        direction=Direction(str(values.get(f"{prefix}_direction", "two_way"))),
        policy=Policy(str(values.get(f"{prefix}_conflict", "newest_wins"))),
        propagate_mailbox_deletes=bool(propagate),
    )


def _api_calls(jobs: Sequence[KindJob]) -> dict[str, int]:
    totals: dict[str, int] = {}
    seen: set[int] = set()
    for job in jobs:
        for repo in (job.mailbox, job.salesforce):
            if id(repo) in seen or not isinstance(repo, CountsApiCalls):
                continue
            seen.add(id(repo))
            for service, count in repo.api_calls().items():
                totals[service] = totals.get(service, 0) + count
    return totals


def _diff(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in sorted(after.items())}


def run_session(
    jobs: Sequence[KindJob],
    state: SyncState,
    *,
    trigger: str = "cli",
    progress: ProgressCallback | None = None,
    api_calls: ApiCallCounter | None = None,
) -> dict[str, object]:
    """Run every job and return the summary: status, counts, api_calls, issues, duration_s.

    `api_calls` overrides the counters read from the repositories (when adapters share clients).
    `needs_attention` is true when something waits for the user (a held mass deletion, a conflict
    kept aside).
    """
    started = time.monotonic()
    counter = api_calls or (lambda: _api_calls(jobs))
    calls_before = dict(counter())
    state.close_interrupted_runs()
    run_id = state.start_run(trigger)
    state.prune_intents()
    results: dict[Kind, KindResult] = {}
    issues: list[dict[str, object]] = []
    failed_kinds: list[str] = []
    active = [job for job in jobs if job.options.direction is not Direction.OFF]
    for job in active:
        try:
            result = sync_kind(
                job.kind,
                job.mailbox,
                job.salesforce,
                state,
                job.options,
                run_id=run_id,
                progress=progress,
            )
        except NeedsUser as exc:
            # the same cause would fail every kind; stop and let the caller ask the user
            state.finish_run(run_id, "failed", exc.user_message, {"needs_attention": True})
            raise
        except Exception as exc:
            log.exception("%s sync failed", job.kind)
            failed_kinds.append(job.kind)
            title = f"Couldn't sync {job.kind}s"
            issue_id = state.record_issue(
                run_id=run_id,
                kind=job.kind,
                category="error",
                title=title,
                message=str(exc) or exc.__class__.__name__,
                item_key=f"session:{job.kind}",
                payload={"exception": exc.__class__.__name__},
            )
            issues.append(
                {
                    "id": issue_id,
                    "kind": job.kind,
                    "category": "error",
                    "title": title,
                    "item_key": f"session:{job.kind}",
                }
            )
            continue
        results[job.kind] = result
        issues.extend(result.issues)
        if not any(i.get("item_key") == f"session:{job.kind}" for i in result.issues):
            for old in state.open_issues(job.kind, "error"):
                if old.item_key == f"session:{job.kind}":
                    state.resolve_issue(old.id, "synced")
    if active and len(failed_kinds) == len(active):
        status = "failed"
    elif failed_kinds or any(r.failed_items or r.stopped for r in results.values()):
        status = "partial"
    else:
        status = "ok"
    summary: dict[str, object] = {
        "status": status,
        "counts": {kind: r.counts_dict() for kind, r in results.items()},
        "api_calls": _diff(counter(), calls_before),
        "issues": issues,
        "needs_attention": any(r.stopped or r.conflicts for r in results.values()),
        "changes": sum(r.changes for r in results.values()),
        "duration_s": round(time.monotonic() - started, 3),
        "run_id": run_id,
    }
    message = ", ".join(f"{k} failed" for k in failed_kinds)
    state.finish_run(run_id, status, message, summary)
    return summary
