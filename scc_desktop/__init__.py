"""scc-desktop: mailbox <-> Salesforce sync in the system tray."""

from importlib import metadata as _metadata

APP_NAME = "scc-desktop"
APP_AUTHOR = "scc-desktop"

try:
    __version__ = _metadata.version(APP_NAME)
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
