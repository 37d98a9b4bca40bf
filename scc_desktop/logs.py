"""Logging to a rotating, user-only file, with secrets scrubbed on the way out.

No code logs a token on purpose; the filter is the second line of defence against a library
that puts one in an exception message or a URL.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

from scc_desktop.paths import make_private_dir, make_private_file

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=!-]+"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|id_token|session_id|client_secret|code_verifier|"
        r"password|code|device_code|sid)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,}]+"
    ),
)
FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"


def scrub(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


class ScrubbingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class _PrivateRotatingHandler(logging.handlers.RotatingFileHandler):
    def _open(self):  # type: ignore[no-untyped-def]
        make_private_file(Path(self.baseFilename))
        return super()._open()


def configure(log_file: Path, level: int = logging.INFO, to_stderr: bool = False) -> None:
    make_private_dir(log_file.parent)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_scc_desktop", False):
            root.removeHandler(old)
            old.close()
    handler: logging.Handler = _PrivateRotatingHandler(
        log_file, maxBytes=2_000_000, backupCount=5, encoding="utf-8"
    )
    handler.setFormatter(ScrubbingFormatter(FORMAT))
    handler._scc_desktop = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if to_stderr:
        stream = logging.StreamHandler()
        stream.setFormatter(ScrubbingFormatter("%(levelname)s %(name)s: %(message)s"))
        stream._scc_desktop = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    root.setLevel(level)
    for noisy in ("urllib3", "msal", "werkzeug", "simple_salesforce"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
