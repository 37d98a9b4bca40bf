"""The `scc-desktop` command: the tray app by default, plus headless subcommands.

Exit codes: 0 done; 1 failed; 2 refused input (bad value, locked setting, usage); 3 not available
in this version. Qt is imported only when the tray app starts, so headless commands stay light.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scc_desktop import __version__
from scc_desktop.settings import SETTINGS, Kind, SettingsError, format_value

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_NOT_AVAILABLE = 3

log = logging.getLogger(__name__)


def _build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--profile",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="keep config, state and logs under DIR (also: SCC_DESKTOP_HOME)",
    )
    common.add_argument(
        "--sandbox",
        action="store_true",
        default=argparse.SUPPRESS,
        help="run against the built-in sandbox with demo accounts (no sign-in)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log to stderr too"
    )

    parser = argparse.ArgumentParser(
        prog="scc-desktop",
        description="Keep your mailbox and your Salesforce org in sync, from the system tray.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"scc-desktop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sync = sub.add_parser("sync", parents=[common], help="run one sync session headless")
    sync.add_argument("--once", action="store_true", help="run one session and exit")
    sync.add_argument("--json", action="store_true", help="print the summary as JSON")

    sandbox = sub.add_parser("sandbox", parents=[common], help="the built-in API emulators")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION")
    serve = sandbox_sub.add_parser(
        "serve", parents=[common], help="serve the emulators over HTTPS on 127.0.0.1"
    )
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument(
        "--data", metavar="DIR", help="sandbox data folder (default: in the profile)"
    )
    serve.add_argument(
        "--seed",
        choices=("empty", "demo", "large"),
        help="reset to this seed at start (default: keep existing data, demo when new)",
    )

    status = sub.add_parser("status", parents=[common], help="the last sessions and open issues")
    status.add_argument("--json", action="store_true")

    settings = sub.add_parser("settings", parents=[common], help="read and change settings")
    settings_sub = settings.add_subparsers(dest="settings_command", metavar="ACTION")
    listing = settings_sub.add_parser(
        "list", parents=[common], help="all settings with their values"
    )
    listing.add_argument("--json", action="store_true")
    get = settings_sub.add_parser("get", parents=[common], help="print one setting's value")
    get.add_argument("key")
    put = settings_sub.add_parser(
        "set", parents=[common], help="change one setting (booleans: true/false, on/off)"
    )
    put.add_argument("key")
    put.add_argument("value")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if sys.platform != "win32":
        os.umask(0o077)  # everything we create (state, logs, sandbox data) is the user's alone
    parser = _build_parser()
    args = parser.parse_args(argv)
    command = getattr(args, "command", None)
    try:
        if command == "settings":
            return _settings(args, parser)
        if command == "status":
            return _status(args)
        if command == "sync":
            return _sync(args)
        if command == "sandbox":
            return _sandbox(args, parser)
        return _run_tray(args)  # argparse admits no other command
    except KeyboardInterrupt:
        return EXIT_FAILED


# --- helpers ---------------------------------------------------------------------------------


def _context(args: argparse.Namespace) -> Any:
    from scc_desktop import logs
    from scc_desktop.context import AppContext

    ctx = AppContext.open(getattr(args, "profile", None))
    logs.configure(ctx.paths.log_file, to_stderr=bool(getattr(args, "verbose", False)))
    if ctx.db.recovery is not None:
        # open_database moved the file aside before the log was set up: say it in the log too
        log.error("%s", ctx.db.recovery.user_message())
        print(ctx.db.recovery.user_message(), file=sys.stderr)
    for problem in ctx.policy.problems:
        print(f"Administrator policy: {problem}", file=sys.stderr)
    return ctx


# --- settings --------------------------------------------------------------------------------


def _settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    action = getattr(args, "settings_command", None)
    if action is None:
        parser.parse_args(["settings", "--help"])
        return EXIT_REFUSED
    ctx = _context(args)
    settings = ctx.settings()
    if action == "list":
        rows = [
            {
                "key": decl.key,
                "value": value,
                "default": decl.default,
                "type": decl.kind.value,
                "label": decl.label,
                "group": decl.group.value,
                "locked": settings.is_locked(decl.key),
                **({"choices": list(decl.choice_values())} if decl.kind is Kind.CHOICE else {}),
            }
            for decl, value in settings.items()
        ]
        if getattr(args, "json", False):
            print(json.dumps(rows, indent=2, ensure_ascii=False))
        else:
            width = max(len(d.key) for d in SETTINGS)
            for row in rows:
                lock = "  (locked by administrator)" if row["locked"] else ""
                print(f"{row['key']:<{width}}  {format_value(row['value'])}{lock}")
        return EXIT_OK
    try:
        if action == "get":
            print(format_value(settings.get(args.key)))
            return EXIT_OK
        if action == "set":
            value = settings.set(args.key, args.value)
            from scc_desktop.setting_effects import apply_effect

            apply_effect(ctx.paths, args.key, value)
            print(f"{args.key} = {format_value(value)}")
            return EXIT_OK
    except SettingsError as exc:
        print(f"scc-desktop: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_REFUSED


# --- status ----------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    from scc_desktop.store.history import History
    from scc_desktop.store.issues import Issues

    ctx = _context(args)
    runs = History(ctx.db).recent(10)
    issues = Issues(ctx.db).open()
    if getattr(args, "json", False):
        print(
            json.dumps(
                {
                    "profile": str(ctx.paths.data_dir),
                    "sessions": [run.__dict__ for run in runs],
                    "open_issues": [issue.__dict__ for issue in issues],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    if not runs:
        print("No sync session has run yet.")
    for run in runs:
        print(f"{run.started_at}  {run.trigger:<6}  {run.status:<13}  {run.message}")
    print(f"Open sync issues: {len(issues)}")
    for issue in issues[:20]:
        print(f"  [{issue.kind}] {issue.title}: {issue.message}")
    return EXIT_OK


# --- sync ------------------------------------------------------------------------------------


def _sync(args: argparse.Namespace) -> int:
    if not args.once:
        print("scc-desktop sync: add --once to run one session headless.", file=sys.stderr)
        return EXIT_REFUSED
    from scc_desktop.engine_runner import EngineRunner, SandboxConnections
    from scc_desktop.runner import NOT_CONNECTED_MESSAGE, SessionOutcome

    ctx = _context(args)
    as_json = bool(getattr(args, "json", False))

    def progress(text: str) -> None:
        if not as_json:
            print(f"  {text}", file=sys.stderr, flush=True)

    demo = None
    try:
        if getattr(args, "sandbox", False):
            from scc_desktop.demo import start_demo

            demo = start_demo(ctx.paths)
            outcome = EngineRunner(ctx, SandboxConnections(demo)).run("cli", progress)
        else:
            from scc_desktop.accounts import AccountConnections

            outcome = EngineRunner(ctx, AccountConnections()).run("cli", progress)
    finally:
        if demo is not None:
            demo.stop()
    if outcome.status == "not_connected":
        outcome = SessionOutcome(
            "not_connected",
            f"{NOT_CONNECTED_MESSAGE} Open Settings > Accounts, or try the built-in sandbox: "
            "scc-desktop sync --once --sandbox",
        )
    if as_json:
        summary = dict(outcome.summary) or {"status": outcome.status}
        summary.setdefault("message", outcome.message)
        if ctx.db.recovery is not None:
            summary["state_recovery"] = {
                "moved_to": str(ctx.db.recovery.moved_to),
                "reason": ctx.db.recovery.reason,
                "message": ctx.db.recovery.user_message(),
            }
        print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    else:
        _print_outcome(outcome)
    if outcome.status == "ok":
        return EXIT_OK
    if outcome.status == "not_connected":
        return EXIT_NOT_AVAILABLE
    return EXIT_FAILED


def _print_outcome(outcome: Any) -> None:
    print(outcome.message)
    counts = outcome.summary.get("counts", {})
    for kind, sides in counts.items():
        cells = ", ".join(
            f"{side}: +{n['created']} ~{n['updated']} -{n['deleted']}" for side, n in sides.items()
        )
        print(f"  {kind:<8} {cells}")
    calls = outcome.summary.get("api_calls", {})
    if calls:
        print("  API calls: " + ", ".join(f"{k} {v}" for k, v in calls.items()))
    for issue in outcome.summary.get("issues", [])[:20]:
        print(f"  issue [{issue.get('kind')}] {issue.get('title')}")


# --- sandbox ---------------------------------------------------------------------------------


def _sandbox(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if getattr(args, "sandbox_command", None) != "serve":
        parser.parse_args(["sandbox", "--help"])
        return EXIT_REFUSED
    from scc_desktop.sandbox.server import SandboxServer

    data_dir = Path(args.data) if args.data else _context(args).paths.sandbox_dir
    server = SandboxServer(data_dir, port=args.port, seed=args.seed)

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(json.dumps(server.info()), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK


# --- tray ------------------------------------------------------------------------------------


def _run_tray(args: argparse.Namespace) -> int:
    ctx = _context(args)
    from scc_desktop.ui import run_app

    if getattr(args, "sandbox", False):
        from scc_desktop.engine_runner import SandboxRunnerFactory

        factory = SandboxRunnerFactory(ctx)
        try:
            return int(run_app(ctx, factory, sandbox=True, provider=factory.provider()))
        finally:
            factory.close()
    from scc_desktop.accounts import AccountConnections
    from scc_desktop.engine_runner import EngineRunner

    provider = AccountConnections()  # one provider: its clients live across sessions
    # The Save Email / New Records thread gets its own (clients are used by one thread each).
    return int(run_app(ctx, lambda: EngineRunner(ctx, provider), provider=AccountConnections()))
