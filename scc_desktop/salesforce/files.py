"""Enhanced Email detection and attachment uploads (Files or Attachment objects)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scc_desktop.salesforce.client import SalesforceClient
from scc_desktop.salesforce.errors import FileTooLarge, RecordError, RecordFailed, RequestRefused
from scc_desktop.store.db import Database

# REST accepts a base64 body up to 37.5 MB for non-multipart uploads: 28 MB of raw bytes. We stay
# at 25 MB, the Attachment object's limit, for both kinds.
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
ENHANCED_EMAIL_TTL_S = 24 * 3600.0


@dataclass(frozen=True)
class UploadResult:
    id: str  # ContentVersion or Attachment id
    kind: str  # 'ContentVersion' | 'Attachment'
    content_document_id: str | None = None


def _record_failed(exc: RequestRefused) -> RecordFailed:
    return RecordFailed([RecordError(exc.error_code or f"HTTP_{exc.status}", str(exc))])


class OrgFeatures:
    """What this org can do, probed once a day and kept in sf_org_facts."""

    def __init__(
        self,
        client: SalesforceClient,
        db: Database | None = None,
        org_id: str = "",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.db = db
        self.org_id = org_id
        self.clock = clock

    def enhanced_email(self, *, refresh: bool = False) -> bool:
        """True when EmailMessage can be created with RelatedToId (Enhanced Email on)."""
        if not refresh:
            cached = self._fact("enhanced_email")
            if isinstance(cached, bool):
                return cached
        value = self._probe_enhanced_email()
        self._save_fact("enhanced_email", value, ENHANCED_EMAIL_TTL_S)
        return value

    def _probe_enhanced_email(self) -> bool:
        try:
            describe = self.client.restful("sobjects/EmailMessage/describe")
        except RequestRefused:
            return False  # 404 NOT_FOUND / 403: the object is not available to this user
        if not isinstance(describe, dict) or not describe.get("createable", False):
            return False
        names = {str(f.get("name")) for f in describe.get("fields", []) if isinstance(f, dict)}
        return "RelatedToId" in names

    def _fact(self, key: str) -> Any:
        if self.db is None:
            return None
        row = (
            self.db.connect()
            .execute(
                "SELECT value FROM sf_org_facts WHERE org = ? AND key = ? AND expires_at > ?",
                (self.org_id, key, self.clock()),
            )
            .fetchone()
        )
        return json.loads(row["value"]) if row is not None else None

    def _save_fact(self, key: str, value: Any, ttl_s: float) -> None:
        if self.db is None:
            return
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO sf_org_facts (org, key, value, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(org, key) DO UPDATE SET value = excluded.value, "
                "expires_at = excluded.expires_at",
                (self.org_id, key, json.dumps(value), self.clock() + ttl_s),
            )


class Uploader:
    """Uploads one file to a record, as a File (ContentVersion) or an Attachment."""

    def __init__(self, client: SalesforceClient, *, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.client = client
        self.max_bytes = max_bytes

    def upload(
        self,
        parent_id: str,
        name: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        as_attachment: bool = False,
        description: str | None = None,
    ) -> UploadResult:
        """Raise FileTooLarge above the limit (nothing is sent) or RecordFailed if refused."""
        if len(data) > self.max_bytes:
            raise FileTooLarge(name, len(data), self.max_bytes)
        body64 = base64.b64encode(data).decode("ascii")
        if as_attachment:
            fields: dict[str, Any] = {
                "ParentId": parent_id,
                "Name": name[:255],
                "Body": body64,
                "ContentType": content_type,
            }
            if description:
                fields["Description"] = description[:500]
            return UploadResult(self._create("Attachment", fields), "Attachment")
        fields = {
            "Title": name[:255],
            "PathOnClient": name[:500],
            "VersionData": body64,
            "FirstPublishLocationId": parent_id,
        }
        if description:
            fields["Description"] = description[:1000]
        version_id = self._create("ContentVersion", fields)
        document_id: str | None = None
        try:
            record = self.client.restful(
                f"sobjects/ContentVersion/{version_id}", params={"fields": "ContentDocumentId"}
            )
            document_id = (record or {}).get("ContentDocumentId")
        except RequestRefused:
            document_id = None
        return UploadResult(version_id, "ContentVersion", document_id)

    def _create(self, sobject: str, fields: dict[str, Any]) -> str:
        # A plain POST: not retried after an ambiguous failure (a file has no natural key),
        # so a dropped upload is reported and the next session tries it again.
        try:
            answer = self.client.restful(f"sobjects/{sobject}/", "POST", json=fields, retry=False)
        except RequestRefused as exc:
            raise _record_failed(exc) from exc
        if not isinstance(answer, dict) or not answer.get("success", False):
            errors = [
                RecordError(str(e.get("statusCode", "UNKNOWN")), str(e.get("message", "")))
                for e in (answer or {}).get("errors", [])
            ]
            raise RecordFailed(errors)
        return str(answer["id"])
