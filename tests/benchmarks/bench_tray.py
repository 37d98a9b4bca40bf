"""Tray app benchmarks: start-up to the tray icon shown, idle CPU and RSS, longest GUI stall.

    python tests/benchmarks/bench_tray.py [--quick] [--json-only]

- Start-up: `scc-desktop --sandbox` (cli.main, a fresh then a warm profile) from process launch to
  the tray icon shown (Tray.show called and the event loop running). Under Xvfb with trayer when
  both are installed (a real tray), else QT_QPA_PLATFORM=offscreen (no tray: the settings window
  is shown instead, and that is what is timed).
- Idle: the same app, after its first (demo) session, CPU and RSS over 60 s (`--quick`: 10 s).
- GUI stall: TrayApp in-process with a 10 ms QTimer heartbeat measuring its own lateness while
  the worker runs a session against the `large` seed (sandbox in another process).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LARGE_FULL, LARGE_QUICK, RemoteSandbox, machine, open_profile, sign_in

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- child: start-up -----------------------------------------------------------------------------


def child_startup(profile: str) -> int:
    t0 = float(os.environ["BENCH_T0"])
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QSystemTrayIcon

    from scc_desktop.ui import app as app_module
    from scc_desktop.ui import tray as tray_module

    original_show = tray_module.Tray.show
    original_start = app_module.TrayApp.start
    marks: dict[str, Any] = {}

    def show(self: Any) -> None:
        original_show(self)
        marks["tray_show_s"] = time.time() - t0

    def report() -> None:
        marks["shown_s"] = time.time() - t0
        marks["tray_available"] = QSystemTrayIcon.isSystemTrayAvailable()
        print(json.dumps(marks), flush=True)
        QApplication.quit()

    def start(self: Any) -> None:
        original_start(self)
        QTimer.singleShot(0, report)  # runs once the event loop has drawn the icon

    tray_module.Tray.show = show  # type: ignore[method-assign]
    app_module.TrayApp.start = start  # type: ignore[method-assign]
    from scc_desktop.cli import main

    main(["--profile", profile, "--sandbox"])
    return 0


def measure_startup(env: dict[str, str], runs: int) -> dict[str, Any]:
    profile = tempfile.mkdtemp(prefix="scc-tray-")
    results = []
    for _ in range(runs):
        env = dict(env, BENCH_T0=repr(time.time()))
        out = subprocess.run(
            [sys.executable, __file__, "--child-startup", profile],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"start-up child failed: {out.stderr[-3000:]}")
        results.append(json.loads(lines[0]))
    shown = [r["shown_s"] for r in results]
    return {
        "first_launch_s": round(shown[0], 3),
        "warm_launches_s": [round(s, 3) for s in shown[1:]],
        "warm_median_s": round(statistics.median(shown[1:]), 3) if len(shown) > 1 else None,
        "tray_available": results[0]["tray_available"],
        "runs": results,
    }


# --- idle ----------------------------------------------------------------------------------------


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def _proc_mem_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return out


def measure_idle(env: dict[str, str], seconds: int, settle: int) -> dict[str, Any]:
    profile = tempfile.mkdtemp(prefix="scc-idle-")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scc_desktop", "--profile", profile, "--sandbox"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        time.sleep(settle)  # start-up and the first (demo) session
        if proc.poll() is not None:
            raise RuntimeError("the tray app exited early")
        cpu0, t0 = _proc_cpu_s(proc.pid), time.perf_counter()
        rss_samples = []
        while time.perf_counter() - t0 < seconds:
            time.sleep(1)
            rss_samples.append(_proc_mem_mb(proc.pid)["VmRSS"])
        cpu1, t1 = _proc_cpu_s(proc.pid), time.perf_counter()
        mem = _proc_mem_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    status = subprocess.run(
        [sys.executable, "-m", "scc_desktop", "--profile", profile, "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    ).stdout
    history = [line.strip() for line in status.splitlines() if " ok " in f" {line} "]
    return {
        "seconds": round(t1 - t0, 1),
        "cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 3),
        "cpu_s": round(cpu1 - cpu0, 3),
        "rss_mb_end": mem["VmRSS"],
        "rss_mb_min": min(rss_samples),
        "rss_mb_max": max(rss_samples),
        "peak_rss_mb": mem["VmHWM"],
        "sessions_before_idle": history,
    }


# --- child: GUI stall during a large sync --------------------------------------------------------


def child_stall(quick: bool) -> int:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from scc_desktop.engine_runner import EngineRunner, SandboxConnections
    from scc_desktop.ui.app import TrayApp

    root = Path(tempfile.mkdtemp(prefix="scc-stall-"))
    sb = RemoteSandbox(root / "sandbox", seed="empty")
    try:
        sb.reset("large", LARGE_QUICK if quick else LARGE_FULL)
        ctx = open_profile(root)
        app = QApplication(sys.argv[:1])
        app.setQuitOnLastWindowClosed(False)

        def factory() -> EngineRunner:  # called in the worker thread, as with --sandbox
            return EngineRunner(ctx, SandboxConnections(sign_in(sb)))

        tray_app = TrayApp(ctx, factory, run_at_start=True)
        lateness: list[float] = []
        # garbage-collection pauses hold the GIL too: record them to tell them from the rest
        gc_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        gc_start: dict[str, float] = {}

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_start["t"] = time.perf_counter()
            elif "t" in gc_start:
                gc_pauses[info["generation"]].append((time.perf_counter() - gc_start["t"]) * 1000)

        gc.callbacks.append(on_gc)
        state = {"last": 0.0, "t0": 0.0, "outcome": None}

        def beat() -> None:
            now = time.perf_counter()
            if state["last"]:
                lateness.append(max(0.0, (now - state["last"]) * 1000 - 10))
            state["last"] = now

        timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.setInterval(10)
        timer.timeout.connect(beat)

        def finished(outcome: Any) -> None:
            state["outcome"] = outcome
            state["wall"] = time.perf_counter() - state["t0"]
            QTimer.singleShot(200, app.quit)

        tray_app.worker.worker.finished.connect(finished)
        state["t0"] = time.perf_counter()
        timer.start()
        tray_app.start()
        QTimer.singleShot(900_000, app.quit)
        app.exec()
        timer.stop()
        tray_app.shutdown()
        outcome = state["outcome"]
        ordered = sorted(lateness)
        print(
            json.dumps(
                {
                    "session_status": getattr(outcome, "status", None),
                    "session_changes": getattr(outcome, "changes", None),
                    "session_wall_s": round(float(state.get("wall", 0.0)), 2),
                    "heartbeats": len(lateness),
                    "max_stall_ms": round(ordered[-1], 1) if ordered else None,
                    "p99_stall_ms": round(ordered[int(len(ordered) * 0.99)], 1)
                    if ordered
                    else None,
                    "stalls_over_50ms": sum(1 for x in ordered if x > 50),
                    "gc_max_pause_ms": {
                        str(g): round(max(v), 1) if v else 0.0 for g, v in gc_pauses.items()
                    },
                    "gc_collections": {str(g): len(v) for g, v in gc_pauses.items()},
                    "platform": app.platformName(),
                }
            ),
            flush=True,
        )
    finally:
        sb.stop()
    return 0


def measure_stall(env: dict[str, str], quick: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child-stall"] + (["--quick"] if quick else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=2400, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"stall child failed: {out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# --- main ----------------------------------------------------------------------------------------


def display_env() -> tuple[dict[str, str], list[subprocess.Popen[bytes]], str]:
    env = dict(os.environ)
    env.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    env.setdefault("SCC_DESKTOP_POLICY", str(Path(tempfile.mkdtemp()) / "no-policy.toml"))
    if shutil.which("Xvfb") and shutil.which("trayer"):
        display = ":98"
        xvfb = subprocess.Popen(
            ["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        env["DISPLAY"] = display
        env.pop("QT_QPA_PLATFORM", None)
        tray = subprocess.Popen(
            ["trayer", "--edge", "top", "--widthtype", "request"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        time.sleep(1.0)
        return env, [tray, xvfb], "Xvfb :98 + trayer"
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env, [], "offscreen (no tray host)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="idle 10 s, smaller large seed")
    parser.add_argument("--json-only", action="store_true")
    parser.add_argument("--child-startup", metavar="PROFILE", help=argparse.SUPPRESS)
    parser.add_argument("--child-stall", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_startup:
        return child_startup(args.child_startup)
    if args.child_stall:
        return child_stall(args.quick)
    started = time.perf_counter()
    env, helpers, display = display_env()
    try:
        print("... start-up", file=sys.stderr, flush=True)
        startup = measure_startup(env, 4)
        print("... idle", file=sys.stderr, flush=True)
        idle = measure_idle(env, 10 if args.quick else 60, settle=15)
        print("... GUI stall during a large sync", file=sys.stderr, flush=True)
        stall = measure_stall(env, args.quick)
    finally:
        for helper in helpers:
            helper.terminate()
            helper.wait(timeout=10)
    results = {
        "machine": machine(),
        "mode": "quick" if args.quick else "full",
        "display": display,
        "startup": startup,
        "idle": idle,
        "stall": stall,
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(results, indent=2))
    if not args.json_only:
        print()
        print(f"display                 {display}")
        print(
            f"start-up to tray icon   first {startup['first_launch_s']} s, "
            f"warm median {startup['warm_median_s']} s (target < 1.5 s)"
        )
        print(
            f"idle over {idle['seconds']} s         CPU {idle['cpu_percent']} % (target < 0.5 %), "
            f"RSS {idle['rss_mb_end']} MB (peak {idle['peak_rss_mb']} MB)"
        )
        print(
            f"GUI stall (large sync)  max {stall['max_stall_ms']} ms, "
            f"p99 {stall['p99_stall_ms']} ms, "
            f"{stall['stalls_over_50ms']} over 50 ms (target < 50 ms); session "
            f"{stall['session_status']} {stall['session_changes']} changes "
            f"in {stall['session_wall_s']} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
