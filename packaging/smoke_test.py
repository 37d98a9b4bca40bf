"""Smoke-test a built bundle: version, a headless sandbox sync, and the GUI started and quit.

Usage: python3 packaging/smoke_test.py dist/scc-desktop/scc-desktop
Each step runs the frozen binary in a fresh temporary profile; any failure exits non-zero.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def step(title: str) -> None:
    print(f"== {title}", flush=True)


def main(binary: str) -> int:
    exe = Path(binary).resolve()
    if not exe.exists():
        print(f"no bundle at {exe}; build it with packaging/build.sh", file=sys.stderr)
        return 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    with tempfile.TemporaryDirectory(prefix="scc-smoke-") as tmp:
        step("--version")
        version = subprocess.run(
            [str(exe), "--version"], capture_output=True, text=True, env=env, timeout=60, check=True
        )
        print(version.stdout.strip())
        if not version.stdout.startswith("scc-desktop ") or "unknown" in version.stdout:
            print("the frozen binary lost its package metadata", file=sys.stderr)
            return 1

        step("sync --once --sandbox --json")
        profile = Path(tmp) / "headless"
        started = time.monotonic()
        result = subprocess.run(
            [str(exe), "--profile", str(profile), "sync", "--once", "--sandbox", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            print(result.stdout, result.stderr, sep="\n", file=sys.stderr)
            return 1
        summary = json.loads(result.stdout)
        created = sum(n["created"] for sides in summary["counts"].values() for n in sides.values())
        print(
            f"status {summary['status']}, {created} items created, "
            f"api calls {summary['api_calls']}, {time.monotonic() - started:.1f} s"
        )
        if summary["status"] != "ok" or created == 0:
            print("the sandbox sync did nothing", file=sys.stderr)
            return 1

        step("GUI start and quit (offscreen)")
        gui = subprocess.Popen(
            [str(exe), "--profile", str(Path(tmp) / "gui"), "--sandbox"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(5)
        if gui.poll() is not None:
            out, err = gui.communicate()
            print(f"the GUI exited early ({gui.returncode})\n{out}\n{err}", file=sys.stderr)
            return 1
        gui.send_signal(signal.SIGTERM)
        try:
            code = gui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gui.kill()
            print("the GUI did not quit on SIGTERM", file=sys.stderr)
            return 1
        if code != 0:
            print(
                f"the GUI quit with {code}: {gui.stderr.read() if gui.stderr else ''}",
                file=sys.stderr,
            )
            return 1
        print("started, quit cleanly")
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "dist/scc-desktop/scc-desktop"))
