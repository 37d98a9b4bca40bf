"""Shared test setup: every test runs with its own profile and no real keyring or policy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SCC_DESKTOP_HOME", str(tmp_path / "profile"))
    monkeypatch.setenv("SCC_DESKTOP_POLICY", str(tmp_path / "no-policy.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    # No test may reach a real keyring by accident; the Secret Service test sets up its own.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    os.umask(0o077)
    yield
