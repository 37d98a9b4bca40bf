"""Sync benchmarks against the sandbox: API calls vs the lower bound, wall time, RSS, CPU.

    python tests/benchmarks/bench_sync.py [--quick] [--json-only]

Each scenario runs in its own child process (so peak RSS is per scenario) with the sandbox in a
further child process (`scc-desktop sandbox serve`), so the figures are the app's alone:
- initial sync of the `large` seed at 0 ms and at 50 ms per call, then a quiet session;
- the same for the `demo` seed (quiet-session cost side by side);
- engine CPU per synced item at 0 ms, with a cProfile top-15.
The email stage's calls are reported apart (`email_stage_calls`): the bound counts no email items.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    LARGE_FULL,
    LARGE_QUICK,
    RemoteSandbox,
    code_version,
    cpu_seconds,
    machine,
    open_profile,
    peak_rss_mb,
    process_cpu_seconds,
    run_session,
    sign_in,
)

SF_READ_PAGE = 2000
SF_WRITE_BATCH = 200
GRAPH_WRITE_BATCH = 20
GRAPH_MAX_PAGE = 1000
SFWRITES_QUICK = 1000  # mailbox contacts shared to Salesforce in the `sfwrites` scenario
SFWRITES_FULL = 2000  # kept under Graph's 10,000 requests / 10 min with the write-back
AUTOSHARE = ("email_autoshare", "meetings_autoshare", "appointments_autoshare")


class InFlight:
    """Counts the app's HTTP calls in flight (requests' adapter), for the concurrency used."""

    def __init__(self) -> None:
        import requests.adapters

        self._lock = threading.Lock()
        self.now = 0
        self.max = 0
        self.busy_s = 0.0
        self.calls = 0
        original = requests.adapters.HTTPAdapter.send
        meter = self

        def send(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            with meter._lock:
                meter.now += 1
                meter.max = max(meter.max, meter.now)
                meter.calls += 1
            start = time.perf_counter()
            try:
                return original(adapter, request, *args, **kwargs)
            finally:
                with meter._lock:
                    meter.now -= 1
                    meter.busy_s += time.perf_counter() - start

        requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]

    def reset(self) -> None:
        with self._lock:
            self.max, self.busy_s, self.calls = self.now, 0.0, 0


def _count(rows: Any) -> int:
    return len(rows["records"] if isinstance(rows, dict) else rows)


def source_sizes(sb: RemoteSandbox) -> dict[str, dict[str, int]]:
    """Items each side holds before the first session (what the engine must read)."""
    users = sb.admin("GET", "salesforce/records", type="User")["records"]
    alex = next(u["Id"] for u in users if u["Email"] == "alex.morgan@northwind.example")
    sf: dict[str, int] = {}
    for kind, sobject in (("contact", "Contact"), ("event", "Event"), ("task", "Task")):
        rows = sb.admin("GET", "salesforce/records", type=sobject)["records"]
        sf[kind] = sum(1 for r in rows if r.get("OwnerId") == alex and not r.get("IsDeleted"))
    # What the connector reads: contacts categorized "Salesforce" (plus its own folder, empty at
    # first), calendar items (the demo's all fall in the window), and its own To Do list (new).
    contacts = sb.admin("GET", "microsoft/dump", kind="contacts")
    events = sb.admin("GET", "microsoft/dump", kind="events")
    mb = {
        "contact": sum(1 for c in contacts if "Salesforce" in (c.get("categories") or [])),
        "event": _count(events),
        "task": 0,
        "contacts_not_in_scope": _count(contacts),
    }
    return {"salesforce": sf, "mailbox": mb}


def categorize_contacts(sb: RemoteSandbox, token: str) -> None:
    """Share every mailbox contact (category "Salesforce"), so the session writes them to
    Salesforce: the write-heavy case the `large` seed does not have."""
    graph = sb.info()["microsoft"]["graph_url"]
    ids = [c["id"] for c in sb.admin("GET", "microsoft/dump", kind="contacts")]
    for start in range(0, len(ids), 20):
        requests_ = [
            {
                "id": str(n),
                "method": "PATCH",
                "url": f"/me/contacts/{cid}",
                "headers": {"Content-Type": "application/json"},
                "body": {"categories": ["Salesforce"]},
            }
            for n, cid in enumerate(ids[start : start + 20])
        ]
        reply = sb.http.post(
            f"{graph}/$batch",
            json={"requests": requests_},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
        reply.raise_for_status()
        bad = [r for r in reply.json()["responses"] if r["status"] >= 300]
        if bad:
            raise RuntimeError(f"categorizing contacts failed: {bad[:2]}")


def lower_bound(
    sizes: dict[str, dict[str, int]], counts: dict[str, Any], graph_page: int
) -> dict[str, Any]:
    """Minimum calls for this data: reads at the max page, writes at the max batch."""
    sf_reads = sum(max(1, math.ceil(n / SF_READ_PAGE)) for n in sizes["salesforce"].values())
    sf_writes = 0
    mb_writes = 0
    for sides in counts.values():
        for op in ("created", "updated", "deleted"):
            sf_writes += math.ceil(sides["salesforce"][op] / SF_WRITE_BATCH)
            mb_writes += math.ceil(sides["mailbox"][op] / GRAPH_WRITE_BATCH)
    # one delta stream per kind, plus the default contacts folder's delta (every contact there
    # is read: the categorized ones are kept, a delta cannot filter on categories)
    in_scope = [sizes["mailbox"][k] for k in ("contact", "event", "task")]
    default_folder = sizes["mailbox"]["contacts_not_in_scope"]
    reads_at = {
        page: sum(max(1, math.ceil(n / page)) for n in in_scope)
        + max(1, math.ceil(default_folder / page))
        for page in (graph_page, GRAPH_MAX_PAGE)
    }
    return {
        "salesforce": sf_reads + sf_writes,
        "salesforce_reads": sf_reads,
        "salesforce_writes": sf_writes,
        "graph": reads_at[graph_page] + mb_writes,
        "graph_at_max_page": reads_at[GRAPH_MAX_PAGE] + mb_writes,
        "graph_reads": reads_at[graph_page],
        "graph_writes": mb_writes,
        "graph_page_size": graph_page,
    }


def scenario(seed: str, latency_ms: int, quick: bool, profile: bool) -> dict[str, Any]:
    meter = InFlight()
    root = Path(tempfile.mkdtemp(prefix="scc-bench-"))
    sb = RemoteSandbox(root / "sandbox", seed="empty")
    try:
        params = (LARGE_QUICK if quick else LARGE_FULL) if seed == "large" else None
        start = time.perf_counter()
        if seed == "sfwrites":
            contacts = SFWRITES_QUICK if quick else SFWRITES_FULL
            sb.reset("demo")
            sb.admin(
                "POST",
                "reset",
                {
                    "seed": "large",
                    "params": {"contacts": contacts, "messages": 100, "days": 7},
                    "services": ["microsoft"],
                },
            )
        else:
            sb.reset(seed, params)
        seed_s = time.perf_counter() - start
        accounts = sign_in(sb)
        if seed == "sfwrites":
            categorize_contacts(sb, accounts.microsoft.access_token())
        ctx = open_profile(root)
        settings = ctx.settings()
        for key in AUTOSHARE:
            settings.set(key, True)
        sizes = source_sizes(sb)
        import scc_desktop.engine_runner as engine_runner
        from scc_desktop.engine_runner import SandboxConnections

        # the email stage's own calls (the lower bound does not count email items yet): the
        # runner folds them into the summary through merge_email, which sees both counters
        email_calls: dict[str, int] = {}
        merge_email = engine_runner.merge_email

        def spy(summary: Any, email: Any, before: Any, after: Any) -> Any:
            email_calls.clear()
            email_calls.update({k: after[k] - before.get(k, 0) for k in after})
            return merge_email(summary, email, before, after)

        engine_runner.merge_email = spy

        connections = SandboxConnections(accounts)
        connections.connect(ctx)  # sign-in and clients ready: not part of the session figures
        graph_page = connections.connect(ctx).mailbox.page_size
        sb.faults(latency_ms=latency_ms)
        sb.admin("POST", "counters/reset")
        meter.reset()
        rss_before = peak_rss_mb()
        sandbox_cpu0 = process_cpu_seconds(sb.proc.pid)
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        first = run_session(ctx, accounts, connections)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        sandbox_cpu = process_cpu_seconds(sb.proc.pid) - sandbox_cpu0
        counters = sb.counters()
        batch_items = sb.admin("GET", "microsoft/counters")["batch_item"]
        summary = first.summary
        items = int(summary.get("changes", 0))
        calls = {
            "salesforce": counters["salesforce"]["total"],
            "graph": counters["microsoft"]["total"],
        }
        bound = lower_bound(sizes, summary["counts"], graph_page)
        concurrency = meter.busy_s / wall if wall else 0.0
        initial: dict[str, Any] = {
            "status": first.status,
            "issues": len(summary.get("issues", [])),
            "items_synced": items,
            "counts": summary["counts"],
            "email": summary.get("email"),
            "source_sizes": sizes,
            "calls": calls,
            "calls_by_kind": counters,
            "graph_batch_items": batch_items.get("total", 0),
            "lower_bound": bound,
            "sf_ratio": round(calls["salesforce"] / max(bound["salesforce"], 1), 2),
            "email_stage_calls": dict(email_calls),
            "sf_calls_without_email": calls["salesforce"] - email_calls.get("salesforce", 0),
            "sf_ratio_without_email": round(
                (calls["salesforce"] - email_calls.get("salesforce", 0))
                / max(bound["salesforce"], 1),
                2,
            ),
            "graph_ratio": round(calls["graph"] / max(bound["graph"], 1), 2),
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_item": round(1000 * cpu / max(items, 1), 3),
            "sandbox_cpu_s": round(sandbox_cpu, 2),
            "max_in_flight": meter.max,
            "mean_concurrency": round(concurrency, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "peak_rss_before_mb": round(rss_before, 1),
            "seed_s": round(seed_s, 2),
        }
        if latency_ms:
            total = calls["salesforce"] + calls["graph"]
            ideal = total * latency_ms / 1000 / max(concurrency, 1.0)
            initial["latency_target_s"] = round(1.3 * ideal, 2)
            initial["latency_ideal_s"] = round(ideal, 2)
            initial["latency_ratio"] = round(wall / ideal, 2) if ideal else None
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(15)
            initial["profile_top15_tottime"] = out.getvalue()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
            initial["profile_top15_cumulative"] = out.getvalue()
        sb.admin("POST", "counters/reset")
        t0 = time.perf_counter()
        second = run_session(ctx, accounts, connections)
        quiet_wall = time.perf_counter() - t0
        counters = sb.counters()
        quiet = {
            "status": second.status,
            "changes": int(second.summary.get("changes", 0)),
            "calls": {
                "salesforce": counters["salesforce"]["total"],
                "graph": counters["microsoft"]["total"],
            },
            "calls_by_kind": counters,
            "wall_s": round(quiet_wall, 3),
        }
        # the next delta round reads back the session's own writes; the one after is steady
        sb.admin("POST", "counters/reset")
        t0 = time.perf_counter()
        third = run_session(ctx, accounts, connections)
        steady_wall = time.perf_counter() - t0
        counters = sb.counters()
        steady = {
            "status": third.status,
            "changes": int(third.summary.get("changes", 0)),
            "calls": {
                "salesforce": counters["salesforce"]["total"],
                "graph": counters["microsoft"]["total"],
            },
            "calls_by_kind": counters,
            "wall_s": round(steady_wall, 3),
        }
        return {
            "seed": seed,
            "code": code_version(),
            "latency_ms": latency_ms,
            "initial": initial,
            "quiet": quiet,
            "steady": steady,
        }
    finally:
        sb.stop()


def child(args: argparse.Namespace) -> int:
    result = scenario(args.seed, args.latency, args.quick, args.profile)
    print(json.dumps(result))
    return 0


def run_child(seed: str, latency: int, quick: bool, profile: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--seed", seed, "--latency", str(latency)]
    cmd += ["--quick"] if quick else []
    cmd += ["--profile"] if profile else []
    print(
        f"... {seed} at {latency} ms{' (profiled)' if profile else ''}", file=sys.stderr, flush=True
    )
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"scenario {seed}/{latency} failed:\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def table(results: dict[str, Any]) -> str:
    lines = []
    lines.append("Initial sync")
    head = (
        f"{'scenario':<14}{'items':>7}{'SF calls':>10}{'SF LB':>7}{'ratio':>7}{'Graph':>7}"
        f"{'G LB':>6}{'ratio':>7}{'wall s':>8}{'cpu s':>7}{'RSS MB':>8}{'conc':>6}"
        f"{'SF w/o email':>14}"
    )
    lines.append(head)
    for name, r in results["scenarios"].items():
        i = r["initial"]
        lb = i["lower_bound"]
        lines.append(
            f"{name:<14}{i['items_synced']:>7}{i['calls']['salesforce']:>10}{lb['salesforce']:>7}"
            f"{i['sf_ratio']:>7}{i['calls']['graph']:>7}{lb['graph']:>6}{i['graph_ratio']:>7}"
            f"{i['wall_s']:>8}{i['cpu_s']:>7}{i['peak_rss_mb']:>8}{i['mean_concurrency']:>6}"
            f"{i['sf_calls_without_email']:>8} {i['sf_ratio_without_email']:>5}"
        )
        if "latency_target_s" in i:
            lines.append(
                f"{'':<14}50 ms target: wall <= {i['latency_target_s']} s "
                f"(ideal {i['latency_ideal_s']} s; measured/ideal {i['latency_ratio']})"
            )
    lines.append("")
    lines.append("Quiet sessions (2nd = first after the initial sync; 3rd = steady state)")
    lines.append(f"{'scenario':<20}{'SF calls':>10}{'Graph calls':>13}{'wall s':>9}{'changes':>9}")
    for name, r in results["scenarios"].items():
        for which in ("quiet", "steady"):
            q = r[which]
            label = f"{name} {'2nd' if which == 'quiet' else '3rd'}"
            lines.append(
                f"{label:<20}{q['calls']['salesforce']:>10}{q['calls']['graph']:>13}"
                f"{q['wall_s']:>9}{q['changes']:>9}"
            )
    prof = results.get("profile")
    if prof:
        lines.append("")
        per_item = results["scenarios"]["large@0ms"]["initial"]["cpu_ms_per_item"]
        lines.append(f"Engine CPU per synced item (0 ms): {per_item} ms")
        lines.append(prof["initial"]["profile_top15_tottime"])
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller seed sizes (< 2 min)")
    parser.add_argument("--json-only", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", default="large", help=argparse.SUPPRESS)
    parser.add_argument("--latency", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": machine(),
        "mode": "quick" if args.quick else "full",
        "sizes": LARGE_QUICK if args.quick else LARGE_FULL,
        "note": "emails: see each scenario's code.email_stage (the email stage landed mid-way)",
        "scenarios": {
            "large@0ms": run_child("large", 0, args.quick),
            "large@50ms": run_child("large", 50, args.quick),
            "demo@0ms": run_child("demo", 0, args.quick),
            "sfwrites@0ms": run_child("sfwrites", 0, args.quick),
        },
    }
    results["profile"] = run_child("large", 0, args.quick, profile=True)
    results["total_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results, indent=2))
    if not args.json_only:
        print()
        print(table(results))
        print(f"\n(total {results['total_s']} s, {results['mode']} sizes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
