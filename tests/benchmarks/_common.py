"""Shared set-up for the benchmark scripts (not a test module; pytest does not collect it).

The sandbox runs in its own process (`scc-desktop sandbox serve`), so the engine's CPU time and
RSS measured here are the app's alone, and the emulators do not compete for this process's GIL.
The demo user signs in through the real OAuth flows (`scc_desktop.demo.sign_in_demo`).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from scc_desktop.auth.credentials import MemoryBackend
from scc_desktop.context import AppContext
from scc_desktop.demo import DemoAccounts, sign_in_demo
from scc_desktop.engine_runner import EngineRunner, SandboxConnections
from scc_desktop.net import https_session
from scc_desktop.runner import SessionOutcome

LARGE_FULL = {
    "salesforce": {"contacts": 10000, "events": 3000, "tasks": 2000},
    "microsoft": {"messages": 20000, "days": 60, "contacts": 5000},
}
LARGE_QUICK = {
    "salesforce": {"contacts": 2000, "events": 600, "tasks": 400},
    "microsoft": {"messages": 2000, "days": 60, "contacts": 1000},
}


class RemoteSandbox:
    """A `sandbox serve` child process, shaped like SandboxServer for `sign_in_demo`."""

    def __init__(self, data_dir: Path, seed: str = "empty") -> None:
        env = dict(os.environ)
        env.setdefault("SCC_DESKTOP_HOME", str(data_dir.parent / "sandbox-home"))
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "scc_desktop", "sandbox", "serve"),
                *("--data", str(data_dir), "--seed", seed),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.kill()
            raise RuntimeError("the sandbox did not start")
        self._info: dict[str, Any] = json.loads(line)
        self.ca = SimpleNamespace(ca_file=Path(self._info["ca_file"]))
        self.admin_url: str = self._info["admin_url"]
        self.http = https_session(self.ca.ca_file)

    def info(self) -> dict[str, Any]:
        return self._info

    def admin(self, method: str, action: str, body: Any = None, **params: Any) -> Any:
        reply = self.http.request(
            method, f"{self.admin_url}/{action}", json=body, params=params or None, timeout=600
        )
        reply.raise_for_status()
        return reply.json()

    def reset(self, seed: str, params: dict[str, dict[str, int]] | None = None) -> None:
        for service in ("salesforce", "microsoft"):
            wanted = (params or {}).get(service, {})
            self.admin("POST", "reset", {"seed": seed, "params": wanted, "services": [service]})

    def faults(self, **profile: Any) -> None:
        self.admin("POST", "faults", profile)

    def counters(self) -> dict[str, Any]:
        return dict(self.admin("GET", "counters"))

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def open_profile(root: Path) -> AppContext:
    return AppContext.open(
        root / "profile", secret_backend=MemoryBackend(), policy_path=root / "no-policy.toml"
    )


def sign_in(sandbox: RemoteSandbox) -> DemoAccounts:
    return sign_in_demo(sandbox)  # type: ignore[arg-type]  # duck-typed server


def run_session(
    ctx: AppContext, accounts: DemoAccounts, connections: SandboxConnections | None = None
) -> SessionOutcome:
    runner = EngineRunner(ctx, connections or SandboxConnections(accounts))
    return runner.run("bench", lambda text: None)


def peak_rss_mb() -> float:
    """This process's peak RSS so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb(pid: int | None = None) -> float:
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_cpu_seconds(pid: int) -> float:
    """Another process's user + system CPU time (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict[str, Any]:
    mem = ""
    with contextlib.suppress(OSError, IndexError):
        free = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False)
        mem = free.stdout.split("\n")[1]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "memory": " ".join(mem.split()[:2]),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def code_version() -> dict[str, Any]:
    """Which code was measured: the tree changes while others work, so each result says."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], capture_output=True, text=True, cwd=root, check=False)
        return out.stdout.strip()

    runner = (root / "scc_desktop" / "engine_runner.py").read_text(encoding="utf-8")
    return {
        "head": git("rev-parse", "--short", "HEAD"),
        "modified_files": len(git("status", "--short", "--untracked-files=no").splitlines()),
        "email_stage": "run_email_stage" in runner,
    }


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start
