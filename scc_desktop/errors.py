"""Errors shared across layers."""

from __future__ import annotations


class NeedsUser(Exception):
    """Only the user can fix this (reconnect an account, unlock the keyring).

    A session stops at the first one instead of recording the same cause once per object kind,
    and the tray shows `user_message` and asks for attention.
    """

    user_message = "scc-desktop needs your attention."
