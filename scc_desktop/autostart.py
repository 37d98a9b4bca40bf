"""Start at login: an XDG autostart entry on Linux, the Run key on Windows, a LaunchAgent on macOS.

The entry launches the frozen executable when running from a PyInstaller bundle, otherwise this
Python with `-m scc_desktop`, and carries `--profile` when the profile is not the default one, so
each profile has its own entry. Linux waits a few seconds so the tray host is up first.
"""

from __future__ import annotations

import importlib
import os
import plistlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scc_desktop.paths import ProfilePaths

APP_ID = "io.scc-desktop"
LINUX_DELAY_S = 10
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


def launch_command(paths: ProfilePaths) -> list[str]:
    if getattr(sys, "frozen", False):
        command = [sys.executable]
    else:
        command = [sys.executable, "-m", "scc_desktop"]
    if paths.explicit_root is not None:
        command += ["--profile", str(paths.explicit_root)]
    return command


def _entry_name(paths: ProfilePaths) -> str:
    return "scc-desktop" if paths.explicit_root is None else f"scc-desktop-{paths.key}"


@dataclass(frozen=True)
class Autostart:
    """The login item for one profile on this platform."""

    paths: ProfilePaths
    platform: str = sys.platform
    home: Path | None = None  # tests point this at a temporary folder

    # --- where -------------------------------------------------------------------------------
    def _home(self) -> Path:
        return self.home if self.home is not None else Path.home()

    def linux_entry(self) -> Path:
        config = os.environ.get("XDG_CONFIG_HOME") or str(self._home() / ".config")
        return Path(config) / "autostart" / f"{_entry_name(self.paths)}.desktop"

    def macos_agent(self) -> Path:
        name = (
            f"{APP_ID}.plist"
            if self.paths.explicit_root is None
            else f"{APP_ID}.{self.paths.key}.plist"
        )
        return self._home() / "Library" / "LaunchAgents" / name

    # --- what --------------------------------------------------------------------------------
    def is_enabled(self) -> bool:
        if self.platform == "win32":
            return _windows_get(_entry_name(self.paths)) is not None
        if self.platform == "darwin":
            return self.macos_agent().exists()
        return self.linux_entry().exists()

    def set_enabled(self, enabled: bool) -> None:
        command = launch_command(self.paths)
        if self.platform == "win32":
            if enabled:
                _windows_set(_entry_name(self.paths), subprocess.list2cmdline(command))
            else:
                _windows_delete(_entry_name(self.paths))
            return
        target = self.macos_agent() if self.platform == "darwin" else self.linux_entry()
        if not enabled:
            target.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.platform == "darwin":
            payload = plistlib.dumps(
                {"Label": target.stem, "ProgramArguments": command, "RunAtLoad": True}
            )
            _atomic_write(target, payload)
        else:
            _atomic_write(target, desktop_entry(command).encode("utf-8"))


def desktop_entry(command: list[str]) -> str:
    exec_line = " ".join(_desktop_quote(part) for part in command)
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=scc-desktop\n"
        "Comment=Keep your mailbox and Salesforce in sync\n"
        f"Exec={exec_line}\n"
        "Icon=scc-desktop\n"
        "Terminal=false\n"
        "Categories=Office;Network;\n"
        "X-GNOME-Autostart-enabled=true\n"
        f"X-GNOME-Autostart-Delay={LINUX_DELAY_S}\n"
        "X-KDE-autostart-after=panel\n"
    )


def _desktop_quote(arg: str) -> str:
    """Quote per the Desktop Entry spec: double quotes, with \\ " ` $ escaped inside."""
    if arg and all(ch.isalnum() or ch in "/._-+=:@" for ch in arg):
        return arg
    escaped = "".join("\\" + ch if ch in '\\"`$' else ch for ch in arg)
    return f'"{escaped}"'.replace("%", "%%")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _winreg() -> Any:  # pragma: no cover - Windows only
    """winreg, typed loosely: its stubs exist only when type-checking for Windows."""
    return importlib.import_module("winreg")


def _windows_get(name: str) -> str | None:  # pragma: no cover - Windows only
    winreg = _winreg()

    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
            value, _ = winreg.QueryValueEx(key, name)
            return str(value)
    except OSError:
        return None


def _windows_set(name: str, value: str) -> None:  # pragma: no cover - Windows only
    winreg = _winreg()

    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
        winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)


def _windows_delete(name: str) -> None:  # pragma: no cover - Windows only
    winreg = _winreg()

    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            winreg.DeleteValue(key, name)
    except OSError:
        pass
