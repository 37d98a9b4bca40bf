"""Finding files under resources/ whether installed, editable, or frozen by PyInstaller."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path


def asset_path(relative: str) -> Path:
    """Path of a file under resources/, e.g. asset_path('icons/tray-idle-dark.svg')."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root is not None:
        candidate = Path(frozen_root) / "resources" / relative
        if candidate.exists():
            return candidate
    try:
        packaged = Path(str(resources.files("scc_desktop.resources").joinpath(relative)))
        if packaged.exists():
            return packaged
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "resources" / relative
