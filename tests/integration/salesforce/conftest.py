"""A Salesforce sandbox over real TLS, and a connector signed in to it through the real OAuth flow.

One SandboxServer (Salesforce emulator only) serves the whole directory; each test starts from a
freshly seeded demo org with no faults and zeroed counters. Sign-in goes through the system
browser path: a `webbrowser` controller registered as preferred plays the browser, following the
authorize redirect to the app's loopback listener.
"""

from __future__ import annotations

import webbrowser
from collections.abc import Iterator
from pathlib import Path

import pytest
from sf_harness import Admin, ScriptedBrowser, SignedIn, Sleeps

from scc_desktop.auth.credentials import CredentialStore, MemoryBackend
from scc_desktop.auth.salesforce import SalesforceAuth, SalesforceOAuthConfig
from scc_desktop.salesforce.gateway import SalesforceGateway, connect
from scc_desktop.salesforce.retry import RetryPolicy
from scc_desktop.salesforce.transport import new_http_session
from scc_desktop.sandbox.salesforce.service import SalesforceService
from scc_desktop.sandbox.server import SandboxServer
from scc_desktop.store.db import Database, open_database


@pytest.fixture(scope="session")
def sf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    server = SandboxServer(
        tmp_path_factory.mktemp("sf-sandbox"), port=0, seed="demo", factories=[SalesforceService]
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def admin(sf_server: SandboxServer) -> Iterator[Admin]:
    helper = Admin(sf_server)
    helper.reset("demo")
    helper.faults()
    helper.reset_counters()
    yield helper
    helper.faults()


@pytest.fixture
def browser(sf_server: SandboxServer) -> Iterator[ScriptedBrowser]:
    fake = ScriptedBrowser(str(sf_server.ca.ca_file))
    webbrowser.register("scc-test", None, fake, preferred=True)
    yield fake
    webbrowser._browsers.pop("scc-test", None)  # type: ignore[attr-defined]
    order: list[str] = webbrowser._tryorder or []  # type: ignore[attr-defined]
    while "scc-test" in order:
        order.remove("scc-test")


@pytest.fixture
def oauth_config(sf_server: SandboxServer) -> SalesforceOAuthConfig:
    return SalesforceOAuthConfig.for_sandbox(sf_server.info())


@pytest.fixture
def credentials() -> CredentialStore:
    return CredentialStore("sf-test", MemoryBackend())


@pytest.fixture
def signed_in(
    admin: Admin,
    browser: ScriptedBrowser,
    oauth_config: SalesforceOAuthConfig,
    credentials: CredentialStore,
) -> SignedIn:
    auth = SalesforceAuth(oauth_config, credentials, new_http_session(oauth_config.ca_file))
    account = auth.sign_in(timeout=20)
    return SignedIn(auth, account, credentials)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(tmp_path / "state.sqlite3")
    yield database
    database.close()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def gateway(signed_in: SignedIn, db: Database, admin: Admin, sleeps: Sleeps) -> SalesforceGateway:
    gw = connect(
        signed_in.auth,
        db=db,
        org_id=signed_in.account.org_id,
        user_id=signed_in.account.user_id,
        retry=RetryPolicy(max_attempts=8, sleep=sleeps),
    )
    admin.reset_counters()
    return gw
