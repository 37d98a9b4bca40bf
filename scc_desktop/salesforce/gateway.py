"""The Salesforce gateway the sync engine talks to: one object per session.

    auth = SalesforceAuth(config, credentials)
    gateway = connect(auth, db=db, org_id=account.org_id)
    for page in gateway.changes.read("Contact", fields, cursor=cursor, where=scope): ...
    results = gateway.writer.upsert("Contact", "SCC_Sync_Key__c", rows)
    matches = gateway.matcher.resolve(addresses)
    gateway.stats.counts(), gateway.stats.usage  # calls by kind, org API use

Every call goes through one requests.Session that verifies TLS (the sandbox CA or the system
store), counts calls and reads Sforce-Limit-Info.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import requests

from scc_desktop.auth.salesforce import SalesforceAuth
from scc_desktop.salesforce.changes import ChangeFeed
from scc_desktop.salesforce.client import DEFAULT_API_VERSION, SalesforceClient
from scc_desktop.salesforce.files import OrgFeatures, Uploader
from scc_desktop.salesforce.matching import EmailMatcher
from scc_desktop.salesforce.records import SfRecord
from scc_desktop.salesforce.retry import RetryPolicy
from scc_desktop.salesforce.soql import select, soql_in
from scc_desktop.salesforce.transport import ApiUsage, CallStats, session_stats
from scc_desktop.salesforce.writer import CollectionsWriter
from scc_desktop.store.db import Database


class SalesforceGateway:
    """Reading, change feeds, matching, writing and uploads over one client."""

    def __init__(
        self,
        client: SalesforceClient,
        *,
        db: Database,
        org_id: str,
        user_id: str = "",
    ) -> None:
        self.client = client
        self.db = db
        self.org_id = org_id
        self.user_id = user_id
        self.changes = ChangeFeed(client)
        self.writer = CollectionsWriter(client)
        self.matcher = EmailMatcher(client, db, org_id)
        self.features = OrgFeatures(client, db, org_id)
        self.uploader = Uploader(client)

    @property
    def stats(self) -> CallStats:
        return self.client.stats

    @property
    def usage(self) -> ApiUsage | None:
        return self.client.stats.usage

    def query(
        self,
        sobject: str,
        fields: Sequence[str],
        where: str | None = None,
        *,
        order_by: str | None = None,
        batch_size: int = 2000,
    ) -> Iterator[list[SfRecord]]:
        """Pages of records, selecting only `fields` (Id and SystemModstamp always included)."""
        names = list(dict.fromkeys(["Id", "SystemModstamp", *fields]))
        soql = select(sobject, names, where, order_by=order_by)
        return self.client.query_records(soql, sobject=sobject, batch_size=batch_size)

    def fetch(self, sobject: str, ids: Sequence[str], fields: Sequence[str]) -> list[SfRecord]:
        """Current versions of the given records (one query per 200 ids); missing ones left out."""
        names = list(dict.fromkeys(["Id", "SystemModstamp", *fields]))
        unique = list(dict.fromkeys(ids))
        out: list[SfRecord] = []
        for start in range(0, len(unique), 200):
            batch = unique[start : start + 200]
            soql = select(sobject, names, f"Id IN {soql_in(batch)}")
            out.extend(self.client.query_all(soql, sobject=sobject))
        return out

    def enhanced_email(self) -> bool:
        return self.features.enhanced_email()


def connect(
    auth: SalesforceAuth,
    *,
    db: Database,
    org_id: str,
    user_id: str = "",
    api_version: str | None = None,
    retry: RetryPolicy | None = None,
    session: requests.Session | None = None,
) -> SalesforceGateway:
    """A gateway for one session; the session's calls are counted from zero."""
    http = session if session is not None else auth.session
    stats = session_stats(http)
    if stats is not None:
        stats.reset()
    client = SalesforceClient(
        auth,
        http,
        api_version=api_version or auth.config.api_version or DEFAULT_API_VERSION,
        retry=retry,
    )
    return SalesforceGateway(client, db=db, org_id=org_id, user_id=user_id)
