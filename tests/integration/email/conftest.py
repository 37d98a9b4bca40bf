"""Fixtures of the email stage's integration tests (helpers live in `email_harness`, a module
with a unique name, so another directory's conftest is never picked up by mistake)."""

from __future__ import annotations

from email_harness import email_demo, email_empty_mailbox

__all__ = ["email_demo", "email_empty_mailbox"]
