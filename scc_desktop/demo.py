"""`--sandbox`: the built-in emulators started in-process, and the demo accounts signed in.

Sign-in goes through the real flows (Salesforce authorization code + PKCE, Microsoft device
code), approved by the sandbox itself, so a new user sees a real sync with no account. The
sandbox's data lives in the profile (later runs see the same org and mailbox). Its throwaway
tokens stay in this process's memory: they are re-issued at every start, never written anywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scc_desktop.auth.credentials import CredentialStore, MemoryBackend
from scc_desktop.auth.microsoft import DeviceCode, MicrosoftAccount, MicrosoftAuth
from scc_desktop.auth.salesforce import (
    SalesforceAccount,
    SalesforceAuth,
    SalesforceOAuthConfig,
    sandbox_opener,
)
from scc_desktop.net import https_session
from scc_desktop.paths import ProfilePaths
from scc_desktop.sandbox.server import SandboxServer

log = logging.getLogger(__name__)


@dataclass
class DemoAccounts:
    """The running sandbox and the two accounts signed in to it."""

    server: SandboxServer
    credentials: CredentialStore
    salesforce: SalesforceAuth
    salesforce_account: SalesforceAccount
    microsoft: MicrosoftAuth
    microsoft_account: MicrosoftAccount

    @property
    def ca_file(self) -> Path:
        return self.server.ca.ca_file

    @property
    def info(self) -> dict[str, Any]:
        return self.server.info()

    @property
    def graph_url(self) -> str:
        return str(self.info["microsoft"]["graph_url"])

    def stop(self) -> None:
        self.server.stop()


def start_sandbox(paths: ProfilePaths, seed: str | None = None) -> SandboxServer:
    """Serve the emulators on a free loopback port, with their data under the profile."""
    return SandboxServer(paths.sandbox_dir, port=0, seed=seed).start()


def sign_in_demo(server: SandboxServer) -> DemoAccounts:
    """Sign the demo user in to both emulators through the real OAuth flows."""
    info = server.info()
    credentials = CredentialStore("sandbox", MemoryBackend())
    sf_config = SalesforceOAuthConfig.for_sandbox(info)
    salesforce = SalesforceAuth(sf_config, credentials)
    sf_account = salesforce.sign_in(open_browser=sandbox_opener(server.ca.ca_file), timeout=30)

    ms = info["microsoft"]
    microsoft = MicrosoftAuth(
        ms["client_id"], ms["authority"], credentials, ca_file=str(server.ca.ca_file)
    )
    admin = https_session(server.ca.ca_file)

    def approve(code: DeviceCode) -> None:
        reply = admin.post(
            f"{server.admin_url}/microsoft/approve_device",
            json={"user_code": code.user_code},
            timeout=30,
        )
        reply.raise_for_status()

    try:
        ms_account = microsoft.sign_in_device_flow(approve)
    finally:
        admin.close()
    log.info("sandbox accounts signed in: %s, %s", sf_account.username, ms_account.username)
    return DemoAccounts(server, credentials, salesforce, sf_account, microsoft, ms_account)


def start_demo(paths: ProfilePaths, seed: str | None = None) -> DemoAccounts:
    server = start_sandbox(paths, seed)
    try:
        return sign_in_demo(server)
    except BaseException:
        server.stop()
        raise
