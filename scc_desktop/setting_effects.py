"""What a few settings change outside the app's own state, applied wherever they are set.

The settings window (through its store thread) and `scc-desktop settings set` both call
`apply_effect` after saving, and the tray app calls `reconcile` at start, so the login item
always matches the setting, even after the bundle moved.
"""

from __future__ import annotations

import logging

from scc_desktop.autostart import Autostart
from scc_desktop.paths import ProfilePaths
from scc_desktop.settings import Value

log = logging.getLogger(__name__)


def apply_effect(paths: ProfilePaths, key: str, value: Value) -> None:
    if key == "start_at_login":
        Autostart(paths).set_enabled(bool(value))
        log.info("start at login %s", "enabled" if value else "disabled")


def reconcile(paths: ProfilePaths, start_at_login: bool) -> None:
    """Re-create (or remove) the login item so it points at this executable and profile."""
    autostart = Autostart(paths)
    if start_at_login or autostart.is_enabled():
        autostart.set_enabled(start_at_login)
