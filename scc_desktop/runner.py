"""What the tray worker and `sync --once` run: one session, behind a small plain-Python protocol.

Until accounts are connected the runner says so instead of pretending to sync; the sync engine
provides the real runner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Progress = Callable[[str], None]

NOT_CONNECTED_MESSAGE = "Connect your accounts to start syncing."


@dataclass(frozen=True)
class SessionOutcome:
    status: str  # 'ok' | 'partial' | 'failed' | 'not_connected'
    message: str
    summary: dict[str, Any] = field(default_factory=dict)
    needs_attention: bool = False
    changes: int = 0  # items written on either side; 0 lets the scheduler stretch the interval
    api_usage: tuple[int, int] | None = None  # Salesforce daily use (used, limit), when known


class SessionRunner(Protocol):
    def run(self, trigger: str, progress: Progress) -> SessionOutcome: ...


class NotConnectedRunner:
    """The runner while no mailbox or Salesforce account is connected."""

    def run(self, trigger: str, progress: Progress) -> SessionOutcome:
        return SessionOutcome("not_connected", NOT_CONNECTED_MESSAGE)
