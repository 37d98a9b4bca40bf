"""The Qt tray app; the only package that imports Qt."""

from scc_desktop.ui.app import run_app

__all__ = ["run_app"]
