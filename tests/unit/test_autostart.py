import configparser
import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from scc_desktop.autostart import Autostart, desktop_entry, launch_command
from scc_desktop.paths import resolve_profile


def test_linux_entry_created_and_removed(tmp_path: Path) -> None:
    paths = resolve_profile(tmp_path / "my profile")
    autostart = Autostart(paths, platform="linux")
    entry = autostart.linux_entry()
    assert entry.parent == tmp_path / "xdg-config" / "autostart"  # XDG_CONFIG_HOME from conftest
    assert not autostart.is_enabled()
    autostart.set_enabled(True)
    assert autostart.is_enabled()
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(entry)
    section = parser["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["X-GNOME-Autostart-Delay"] == "10"
    assert "--profile" in section["Exec"] and '"' in section["Exec"]  # the space is quoted
    autostart.set_enabled(True)  # idempotent
    autostart.set_enabled(False)
    assert not entry.exists()
    autostart.set_enabled(False)  # idempotent


def test_entries_are_per_profile(tmp_path: Path) -> None:
    one = Autostart(resolve_profile(tmp_path / "a"), platform="linux")
    two = Autostart(resolve_profile(tmp_path / "b"), platform="linux")
    assert one.linux_entry() != two.linux_entry()


def test_exec_line_runs_the_app(tmp_path: Path) -> None:
    paths = resolve_profile(tmp_path / "p q")
    command = launch_command(paths)
    assert command[:3] == [sys.executable, "-m", "scc_desktop"]
    exec_line = desktop_entry(command).split("Exec=", 1)[1].splitlines()[0]
    # The Desktop Entry quoting is a subset of the shell's; run it to prove it round-trips.
    result = subprocess.run(
        ["sh", "-c", exec_line.replace("scc_desktop --profile", "scc_desktop --version --profile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("scc-desktop ")


def test_macos_launch_agent(tmp_path: Path) -> None:
    autostart = Autostart(
        resolve_profile(tmp_path / "p"), platform="darwin", home=tmp_path / "home"
    )
    autostart.set_enabled(True)
    agent = autostart.macos_agent()
    data = plistlib.loads(agent.read_bytes())
    assert data["RunAtLoad"] is True
    assert data["ProgramArguments"][-2:] == ["--profile", str(tmp_path / "p")]
    autostart.set_enabled(False)
    assert not agent.exists()


def test_frozen_points_at_the_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/scc-desktop/scc-desktop")
    assert launch_command(resolve_profile(tmp_path / "p"))[0] == "/opt/scc-desktop/scc-desktop"
