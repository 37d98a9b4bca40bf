"""Fixtures of the sync integration tests (helpers live in modules with unique names: a
`from conftest import` would pick up another directory's conftest in a full run)."""

from __future__ import annotations

from mailbox_sandbox import demo_sandbox, empty_sandbox

__all__ = ["demo_sandbox", "empty_sandbox"]
