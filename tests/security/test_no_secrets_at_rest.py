"""Issue 7, security as a test: after a full sandbox session no token or secret is at rest in the
profile (state SQLite incl. -wal/-shm, config, logs), every file and folder of the profile is the
user's alone, and no connection the app opened left 127.0.0.1.

The session is the real one: the in-process sandbox (`start_demo`, data under the profile as with
`--sandbox`), sign-in through the real OAuth flows, `EngineRunner.run` over both connectors.
The emulators' own databases (`data/sandbox/*.sqlite3`) are the emulated servers' storage, where
tokens live by design (like Salesforce's own database); they are excluded from the secret scan
but not from the permission check.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scc_desktop import logs
from scc_desktop.auth.credentials import MemoryBackend
from scc_desktop.context import AppContext
from scc_desktop.demo import DemoAccounts, start_demo
from scc_desktop.engine_runner import EngineRunner, SandboxConnections

LOOPBACK = {"127.0.0.1", "::1", "localhost", "::ffff:127.0.0.1"}


def _secrets_in(value: Any) -> Iterator[str]:
    """Every secret-looking string inside a stored credential (raw, or an msal cache's JSON)."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict | list):
            yield from _secrets_in(parsed)
        else:
            yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            secret_key = key in ("secret", "access_token", "refresh_token", "client_secret")
            if secret_key or isinstance(item, dict | list):
                yield from _secrets_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secrets_in(item)


def _collect_secrets(demo: DemoAccounts) -> set[str]:
    found: set[str] = set()
    backend = demo.credentials.backend
    assert isinstance(backend, MemoryBackend)
    for raw in list(backend._items.values()):  # the demo's whole credential store
        found.update(_secrets_in(raw))
    found.add(demo.salesforce.access_token())
    found.add(demo.microsoft.access_token())
    for obj in (demo.salesforce, demo.microsoft):
        for name in ("client_secret", "_client_secret"):
            secret = getattr(obj, name, None) or getattr(getattr(obj, "config", None), name, None)
            if isinstance(secret, str):
                found.add(secret)
    # chunk manifests (json with sha256/chunks) are not secrets; keep long opaque strings only
    return {s for s in found if len(s) >= 20 and not s.startswith("{")}


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> Any:
        seen.append((self.family, address))
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        seen.append((self.family, address))
        return original_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return seen


@pytest.fixture
def app_logging(tmp_path: Path) -> Iterator[None]:
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_scc_desktop", False):
            root.removeHandler(handler)
            handler.close()


def _full_session(tmp_path: Path, umask: int) -> tuple[AppContext, set[str]]:
    previous_umask = os.umask(umask)
    try:
        ctx = AppContext.open(
            tmp_path / "p", secret_backend=MemoryBackend(), policy_path=tmp_path / "none.toml"
        )
        logs.configure(ctx.paths.log_file, level=logging.DEBUG)
        demo = start_demo(ctx.paths)
        try:
            runner = EngineRunner(ctx, SandboxConnections(demo))
            outcome = runner.run("test", lambda text: None)
            assert outcome.status == "ok", outcome.message
            assert outcome.changes > 0
            secrets = _collect_secrets(demo)
        finally:
            demo.stop()
        for handler in logging.getLogger().handlers:
            handler.flush()
    finally:
        os.umask(previous_umask)
    return ctx, secrets


def _loose_files(profile: Path) -> list[str]:
    return [
        f"{p.relative_to(profile)} {stat.filemode(p.stat().st_mode)}"
        for p in [profile, *profile.rglob("*")]
        if p.stat().st_mode & 0o077
    ]


def test_a_full_sandbox_session_leaves_no_secret_at_rest(
    tmp_path: Path, loopback_only: list[Any], app_logging: None
) -> None:
    # `scc-desktop` (cli.main) sets umask 077 before anything is created; so does this test.
    ctx, secrets = _full_session(tmp_path, 0o077)

    # an access token and a refresh token for each service at least
    assert len(secrets) >= 4, "the demo credential store should hold the session's tokens"

    profile = tmp_path / "p"
    sandbox_dir = ctx.paths.sandbox_dir
    scanned: list[Path] = []
    for path in sorted(profile.rglob("*")):
        if not path.is_file():
            continue
        if path.parent == sandbox_dir and ".sqlite3" in path.name:
            continue  # the emulated servers' own storage
        data = path.read_bytes()
        scanned.append(path)
        for secret in secrets:
            for form in (secret.encode(), secret.encode("utf-16-le")):
                assert form not in data, f"a token is stored in {path.relative_to(profile)}"
    names = {p.name for p in scanned}
    assert "state.sqlite3" in names and "scc-desktop.log" in names, names
    assert ctx.paths.log_file.stat().st_size > 0

    assert not _loose_files(profile), f"readable by others: {_loose_files(profile)}"

    assert loopback_only, "the session made no connection?"
    remote = [
        address
        for family, address in loopback_only
        if family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK
    ]
    assert not remote, f"connections left 127.0.0.1: {remote}"


def test_profile_files_are_private_even_under_a_permissive_umask(
    tmp_path: Path, app_logging: None
) -> None:
    _full_session(tmp_path, 0o022)
    assert not _loose_files(tmp_path / "p"), _loose_files(tmp_path / "p")
