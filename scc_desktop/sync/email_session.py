"""The email stage of a session: mailbox messages -> Salesforce activities, exactly once.

    result = run_email_stage(gateway, mailbox, state, snapshot, user_id=..., own_addresses=...,
                             now=now, run_id=run_id)

Streams, in order (so thread marks made by manual saves count for the automatic ones):

1. the "Salesforce Emails" folder: manual saves (``ManualSave(via="folder")``);
2. Inbox and Sent Items: a message categorized "Salesforce" is a manual save
   (``via="category"``); every other one goes through the automatic rules (thread auto-save,
   Auto-Sharing). Both folders are always read, so categorized messages are seen with
   Auto-Sharing off; a first pass only covers ``email_history_days`` back.

Each stream is a delta per folder; its cursor advances only after the page's saves are
recorded. Addresses are resolved once per page (one `matcher.resolve`), opportunities once per
page. What rules to apply is `email_rules.decide_email`; this module only acts on it.

Exactly once: a message's key (`email_rules.idempotency_key`, the Message-ID whatever the path
or folder) is recorded in `email_saves` as a pending intent before the create, and as done with
its Salesforce id after. Before writing, the page's keys are looked up in Salesforce (Task by
``SCC_Sync_Key__c`` = ``email:<key>``, then an upsert; EmailMessage by ``MessageIdentifier``, one
query per page and kind), so a crash between the write and the record, or a lost state file,
creates nothing new. A message already stamped with a
Salesforce id (`mailbox.stamp_message`, done for manual saves) is never saved again either.

Claims: a session and the Save Email window (two threads, or the tray app and a CLI run) may
save the same message at the same moment. Before the lookup and the create, each takes a claim
on the message's `email_saves` row in one transaction (``claim_token``, only while the row is
pending and unclaimed, or claimed by a process that is gone or for longer than `CLAIM_STALE`);
the claim is released once the save is recorded or has failed. Whoever does not get the claim
does not write: a session puts the message on its retry list (the next session finds it saved),
the window waits for the claim to go and then answers "already saved".

Retries keep the user's choice: a Save Email whose save fails keeps its Related To and thread
box (`ManualSave`) with the retry (`email_retries.manual`) and in the Sync Issue's payload, so
the next session, or Sync Issues > Retry, saves it as the user asked.

On first enabling Auto-Sharing the Inbox and Sent Items cursors are dropped, so the next pass
re-reads ``email_history_days`` back (re-reading is safe: saved keys are skipped).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from scc_desktop.mailbox.protocol import SALESFORCE_CATEGORY, Mailbox, MailboxError
from scc_desktop.mailbox.types import AttachmentKind, AttachmentRef, MessageFolder
from scc_desktop.mailbox.types import MailMessage as BoxMessage
from scc_desktop.salesforce.errors import FileTooLarge, RecordFailed, TransientError
from scc_desktop.salesforce.gateway import SalesforceGateway
from scc_desktop.salesforce.matching import PersonMatch
from scc_desktop.salesforce.soql import select, soql_in, soql_quote
from scc_desktop.salesforce.writer import WriteResult
from scc_desktop.settings import SettingsSnapshot
from scc_desktop.sync.email_rules import (
    EmailContext,
    EmailDecision,
    MailMessage,
    ManualSave,
    Opportunity,
    Participant,
    PersonKind,
    PersonRecord,
    SalesforceLookup,
    ThreadMark,
    address_key,
    decide_email,
    idempotency_key,
)
from scc_desktop.sync.state import SyncState

log = logging.getLogger(__name__)

__all__ = [
    "EmailStageResult",
    "link_unresolved",
    "run_email_stage",
    "save_one_message",
    "unresolved_emails",
]

DESCRIPTION_LIMIT = 32_000
SUBJECT_LIMIT = 255
EMAIL_SUBJECT_LIMIT = 3_000
ADDRESS_LIMIT = 4_000
BODY_LIMIT = 131_072
SYNC_KEY_FIELD = "SCC_Sync_Key__c"
SYNC_KEY_PREFIX = "email:"
_SF_ACTIVITY_PREFIXES = ("00T", "02s")
ISSUE_KIND = "email"
CLAIM_STALE = timedelta(minutes=15)  # a claim this old is a crash's, whoever took it
CLAIM_WAIT_S = 60.0  # how long the window waits for a session's claim on the same message

Progress = Callable[[str], None]


@dataclass
class EmailStageResult:
    shared: int = 0
    already_saved: int = 0
    skipped: int = 0
    unresolved: int = 0
    failed: int = 0
    attachments_uploaded: int = 0
    attachments_skipped: int = 0
    messages_read: int = 0
    in_progress: int = 0  # claimed by another save right now: retried next session
    issues: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "shared": self.shared,
            "already_saved": self.already_saved,
            "skipped": self.skipped,
            "unresolved": self.unresolved,
            "failed": self.failed,
            "attachments_uploaded": self.attachments_uploaded,
            "attachments_skipped": self.attachments_skipped,
            "messages_read": self.messages_read,
            "in_progress": self.in_progress,
            "issues": list(self.issues),
            "reasons": dict(self.reasons),
        }


# --- the stage's tables (migration 4) ---------------------------------------------------------


def _iso(stamp: datetime) -> str:
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- claims: one writer per message at a time -------------------------------------------------

_live_claims: set[str] = set()  # this process's stages that may hold claims
_live_lock = threading.Lock()


def _new_claim_token() -> str:
    token = f"{os.getpid()}:{uuid.uuid4().hex}"
    with _live_lock:
        _live_claims.add(token)
    return token


def _drop_claim_token(token: str) -> None:
    with _live_lock:
        _live_claims.discard(token)


def _process_alive(pid: int) -> bool:
    if sys.platform == "win32":
        return True  # no safe probe without a dependency: the age limit decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_is_dead(token: str) -> bool:
    """True when the claim's holder is gone: a stage of this process that ended, or another
    process that no longer runs (a crash). Other processes' live claims are kept."""
    pid_text, _, _ = token.partition(":")
    if not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        with _live_lock:
            return token not in _live_claims
    return not _process_alive(pid)


class EmailStore:
    """Typed access to the email tables of migration 4."""

    def __init__(self, state: SyncState) -> None:
        self.state = state
        self.db = state.db

    def get(self, key: str) -> str | None:
        row = self.db.connect().execute("SELECT value FROM email_state WHERE key = ?", (key,))
        found = row.fetchone()
        return None if found is None else str(found[0])

    def put(self, key: str, value: str) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO email_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE"
                " SET value = excluded.value",
                (key, value),
            )

    def saves(self, keys: Iterable[str]) -> dict[str, sqlite3.Row]:
        wanted = list(dict.fromkeys(keys))
        out: dict[str, sqlite3.Row] = {}
        conn = self.db.connect()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT * FROM email_saves WHERE save_key IN ({marks})", chunk
            ).fetchall():
                out[str(row["save_key"])] = row
        return out

    def add_intent(self, tx: sqlite3.Connection, plan: _Plan) -> None:
        tx.execute(
            "INSERT INTO email_saves (save_key, target, message_identifier, mailbox_id, path,"
            " subject) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(save_key) DO UPDATE SET"
            " mailbox_id = excluded.mailbox_id",
            (
                plan.decision.key,
                plan.decision.target,
                plan.message_identifier,
                plan.message.id,
                plan.decision.path or "",
                plan.message.subject[:SUBJECT_LIMIT],
            ),
        )

    def claim(self, keys: Sequence[str], token: str) -> tuple[set[str], set[str]]:
        """Claim the pending rows of `keys` for `token` (one transaction); returns (claimed,
        done): keys neither claimed nor done are being written by someone else right now."""
        now = datetime.now(UTC)
        stale = _iso(now - CLAIM_STALE)
        claimed: set[str] = set()
        done: set[str] = set()
        with self.db.transaction() as tx:
            for key in keys:
                row = tx.execute(
                    "SELECT state, claim_token, claimed_at FROM email_saves WHERE save_key = ?",
                    (key,),
                ).fetchone()
                if row is None:
                    continue
                if row["state"] == "done":
                    done.add(key)
                    continue
                holder = row["claim_token"]
                if holder and holder != token:
                    fresh = str(row["claimed_at"] or "") >= stale
                    if fresh and not claim_is_dead(str(holder)):
                        continue
                tx.execute(
                    "UPDATE email_saves SET claim_token = ?, claimed_at = ? WHERE save_key = ?",
                    (token, _iso(now), key),
                )
                claimed.add(key)
        return claimed, done

    def release(self, keys: Iterable[str], token: str) -> None:
        with self.db.transaction() as tx:
            tx.executemany(
                "UPDATE email_saves SET claim_token = NULL, claimed_at = NULL"
                " WHERE save_key = ? AND claim_token = ?",
                [(key, token) for key in keys],
            )

    def threads(self) -> list[ThreadMark]:
        rows = self.db.connect().execute(
            "SELECT conversation_id, since, related_to_id FROM email_threads"
        )
        return [ThreadMark(str(r[0]), _parse(str(r[1])), r[2] or None) for r in rows.fetchall()]


@dataclass
class _Plan:
    """One message to save, with what is needed to write it."""

    message: BoxMessage
    rules_message: MailMessage
    decision: EmailDecision
    message_identifier: str
    attachments: list[AttachmentRef] = field(default_factory=list)
    skipped_files: list[AttachmentRef] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    salesforce_id: str | None = None
    recovered: bool = False  # the activity was found already in Salesforce (by its key)


# --- messages -> rules input ------------------------------------------------------------------


def _participants(addresses: Iterable[Any]) -> tuple[Participant, ...]:
    return tuple(Participant(a.email, a.name) for a in addresses if a.email)


def to_rules_message(message: BoxMessage, manual: ManualSave | None) -> MailMessage | None:
    """The rules' view of a mailbox message; None when it cannot be dated."""
    sent = message.sent
    received = message.received
    if sent is None and received is None:
        return None
    return MailMessage(
        message_id=message.internet_message_id or None,
        conversation_id=message.conversation_id or None,
        direction="inbound" if message.is_inbound else "outbound",
        sender=_participants([message.from_] if message.from_ is not None else []),
        to=_participants(message.to),
        cc=_participants(message.cc),
        subject=message.subject,
        sent_at=sent,
        received_at=received,
        manual=manual,
    )


def _manual_for(folder: MessageFolder, message: BoxMessage) -> ManualSave | None:
    if folder is MessageFolder.SALESFORCE_EMAILS:
        return ManualSave(via="folder")
    if any(c.strip().lower() == SALESFORCE_CATEGORY.lower() for c in message.categories):
        return ManualSave(via="category")
    return None


def _stamped_id(message: BoxMessage) -> str | None:
    key = message.sf_key or ""
    return key if key.startswith(_SF_ACTIVITY_PREFIXES) and len(key) in (15, 18) else None


# --- Salesforce content -----------------------------------------------------------------------


def _format_addresses(addresses: Iterable[Any]) -> str:
    return ", ".join(f"{a.name} <{a.email}>" if a.name else a.email for a in addresses)


def _notes(plan: _Plan, max_mb: int) -> str:
    lines: list[str] = []
    if plan.links:
        lines.append("Links:")
        lines.extend(f"  {link}" for link in plan.links)
    for ref in plan.skipped_files:
        lines.append(
            f"Attachment not uploaded: {ref.name} ({ref.size // 1024} KB) is larger than "
            f"{max_mb} MB."
        )
    return "\n".join(lines)


_RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10))}
    | {f"LPT{i}" for i in range(1, 10)}
)


def safe_file_name(name: str, limit: int = 255) -> str:
    """An attachment's name as uploaded: the last path part only (no ``../``, no drive), no
    control characters, no Windows device name (``CON``, ``aux.txt``: prefixed with ``_``),
    at most `limit` characters with the extension kept; ``attachment`` when nothing is left."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    base = "".join(c for c in base if c.isprintable()).strip(" .")
    if not base:
        return "attachment"
    if base.split(".")[0].upper() in _RESERVED_NAMES:
        base = "_" + base
    if len(base) > limit:
        stem, dot, ext = base.rpartition(".")
        keep = f"{dot}{ext}" if dot and 0 < len(ext) <= 16 else ""
        base = (stem if keep else base)[: limit - len(keep)] + keep
    return base


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def task_fields(plan: _Plan, notes: str) -> dict[str, Any]:
    m = plan.message
    d = plan.decision
    when = plan.rules_message.when
    headers = [
        f"From: {_format_addresses([m.from_] if m.from_ else [])}",
        f"To: {_format_addresses(m.to)}",
    ]
    if m.cc:
        headers.append(f"Cc: {_format_addresses(m.cc)}")
    headers.append(f"Date: {when.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
    headers.append(f"Subject: {m.subject}")
    head = "\n".join(headers) + "\n\n"
    tail = f"\n\n{notes}" if notes else ""
    room = DESCRIPTION_LIMIT - len(head) - len(tail)
    body = _cut(m.body_text.strip(), max(room, 0))
    fields: dict[str, Any] = {
        SYNC_KEY_FIELD: _task_key(plan),
        "Subject": _cut(f"Email: {m.subject}", SUBJECT_LIMIT),
        "Status": "Completed",
        "TaskSubtype": "Email",
        "ActivityDate": when.astimezone(UTC).date().isoformat(),
        "Description": (head + body + tail)[:DESCRIPTION_LIMIT],
    }
    if d.who_ids:
        fields["WhoId"] = d.who_ids[0]
    if d.what_id:
        fields["WhatId"] = d.what_id
    return fields


def email_message_fields(plan: _Plan, notes: str) -> dict[str, Any]:
    m = plan.message
    d = plan.decision
    to_ids: list[str] = []
    cc_ids: list[str] = []
    for rel in d.relations:
        bucket = cc_ids if rel.role == "cc" else to_ids
        if rel.record_id not in to_ids and rel.record_id not in cc_ids:
            bucket.append(rel.record_id)
    tail = f"\n\n{notes}" if notes else ""
    text = _cut(m.body_text, BODY_LIMIT - len(tail)) + tail
    fields: dict[str, Any] = {
        "FromAddress": m.from_.email if m.from_ else "",
        "FromName": (m.from_.name if m.from_ else "")[:1000],
        "ToAddress": _cut("; ".join(a.email for a in m.to), ADDRESS_LIMIT),
        "CcAddress": _cut("; ".join(a.email for a in m.cc), ADDRESS_LIMIT),
        "Subject": _cut(m.subject, EMAIL_SUBJECT_LIMIT),
        "TextBody": text,
        "MessageDate": plan.rules_message.when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "Incoming": m.is_inbound,
        "Status": "3",
        "MessageIdentifier": plan.message_identifier,
        "ThreadIdentifier": (m.conversation_id or "")[:255],
    }
    if m.body_html:
        fields["HtmlBody"] = m.body_html[:BODY_LIMIT]
    if d.what_id:
        fields["RelatedToId"] = d.what_id
    if to_ids:
        fields["ToIds"] = to_ids
    if cc_ids:
        fields["CcIds"] = cc_ids
    return {k: v for k, v in fields.items() if v != "" or k in ("FromAddress",)}


# --- the stage --------------------------------------------------------------------------------

FolderName = Literal["inbox", "sentitems", "salesforce_emails"]


class _Stage:
    def __init__(
        self,
        gateway: SalesforceGateway,
        mailbox: Mailbox,
        state: SyncState,
        settings: SettingsSnapshot,
        *,
        user_id: str,
        own_addresses: Sequence[str],
        now: datetime,
        run_id: int | None,
        progress: Progress | None,
    ) -> None:
        self.gateway = gateway
        self.mailbox = mailbox
        self.state = state
        self.store = EmailStore(state)
        self.settings = settings
        self.user_id = user_id
        self.own_addresses = list(own_addresses)
        self.now = now
        self.run_id = run_id
        self.progress = progress
        self.result = EmailStageResult()
        self.max_mb = settings.number("attachment_max_mb")
        self.as_attachment = settings.text("attachments_as") == "attachment"
        self.enabled_at: datetime | None = None
        self.first_enabling = True
        self._enhanced: bool | None = None
        self._retry_added: set[str] = set()
        self.claim_token = _new_claim_token()
        self.retry_when_busy = True  # a session re-reads a message claimed by another save

    def close(self) -> None:
        """This stage holds no claim any more (they are released as each save ends)."""
        _drop_claim_token(self.claim_token)

    # -- setup ------------------------------------------------------------------------------
    def _tick(self, text: str) -> None:
        if self.progress is not None:
            self.progress(f"emails: {text}")

    def enhanced_email(self) -> bool:
        if self._enhanced is None:
            self._enhanced = self.gateway.features.enhanced_email()
        return self._enhanced

    def track_autoshare(self) -> None:
        """Record when Auto-Sharing was turned on, and whether that was the first time."""
        on = self.settings.flag("email_autoshare")
        was_on = self.store.get("autoshare_on") == "1"
        enablings = int(self.store.get("autoshare_enablings") or "0")
        if on and not was_on:
            enablings += 1
            self.store.put("autoshare_enablings", str(enablings))
            self.store.put("autoshare_enabled_at", _iso(self.now))
            if enablings == 1:
                # Re-read Inbox and Sent Items: the history window may reach before the
                # cursors (messages read while the switch was off).
                with self.state.transaction() as tx:
                    tx.execute(
                        "DELETE FROM cursors WHERE stream IN (?, ?)",
                        (_stream(MessageFolder.INBOX), _stream(MessageFolder.SENT)),
                    )
        if on != was_on:
            self.store.put("autoshare_on", "1" if on else "0")
        stamp = self.store.get("autoshare_enabled_at")
        self.enabled_at = _parse(stamp) if stamp else None
        self.first_enabling = enablings <= 1

    def context(self) -> EmailContext:
        return EmailContext.build(
            self.settings,
            salesforce_user_id=self.user_id,
            own_addresses=self.own_addresses,
            enhanced_email=self.enhanced_email()
            if self.settings.text("save_emails_as") == "auto"
            else False,
            autoshare_enabled_at=self.enabled_at,
            autoshare_first_enabling=self.first_enabling,
            marked_threads=self.store.threads(),
        )

    def first_pass_since(self) -> datetime:
        base = self.enabled_at if self.enabled_at is not None else self.now
        return min(base, self.now) - timedelta(days=self.settings.number("email_history_days"))

    # -- reading ----------------------------------------------------------------------------
    def run(self) -> EmailStageResult:
        try:
            self.track_autoshare()
            self.retry_failed()
            for folder in (
                MessageFolder.SALESFORCE_EMAILS,
                MessageFolder.INBOX,
                MessageFolder.SENT,
            ):
                self._tick(f"reading {folder.value}")
                self.read_folder(folder)
        finally:
            self.close()
        self._tick("done")
        return self.result

    def read_folder(self, folder: MessageFolder) -> None:
        stream = _stream(folder)
        cursor = self.state.cursor(stream)
        since = None if folder is MessageFolder.SALESFORCE_EMAILS else self.first_pass_since()
        pages = self.mailbox.read_messages(folder, cursor, with_body=True, received_since=since)
        for page in pages:
            items = [c.item for c in page.changes if c.item is not None and not c.item.is_draft]
            self.result.messages_read += len(items)
            self.process(folder, items)
            self.state.set_cursor(page.stream, page.cursor)

    def requeue_retried_issues(self) -> None:
        """An email the user asked to retry (Sync Issues > Retry on a refused save) goes back on
        the retry list; permanent failures are otherwise not tried again on their own."""
        conn = self.state.db.connect()
        rows = conn.execute(
            "SELECT id, payload FROM sync_issues WHERE kind = ? AND category = 'error' "
            "AND resolution = 'retry'",
            (ISSUE_KIND,),
        ).fetchall()
        if not rows:
            return
        with self.state.transaction() as tx:
            for row in rows:
                payload = json.loads(row["payload"] or "{}")
                mailbox_id = payload.get("mailbox_id") if isinstance(payload, dict) else None
                if isinstance(mailbox_id, str) and mailbox_id:
                    folder = str(payload.get("folder") or MessageFolder.INBOX.value)
                    manual = payload.get("manual")
                    tx.execute(
                        "INSERT OR REPLACE INTO email_retries (mailbox_id, folder, manual)"
                        " VALUES (?, ?, ?)",
                        (mailbox_id, folder, json.dumps(manual) if manual else ""),
                    )
                tx.execute(
                    "UPDATE sync_issues SET resolution = 'retried' WHERE id = ?", (row["id"],)
                )

    def retry_failed(self) -> None:
        self.requeue_retried_issues()
        rows = self.state.db.connect().execute(
            "SELECT mailbox_id, folder, manual FROM email_retries"
        )
        pending = [(str(r[0]), str(r[1]), _manual_from_json(r[2])) for r in rows.fetchall()]
        if not pending:
            return
        by_folder: dict[MessageFolder, list[BoxMessage]] = {}
        chosen: list[tuple[MessageFolder, BoxMessage, ManualSave]] = []
        gone: list[str] = []
        for mailbox_id, folder_name, manual in pending:
            try:
                message = self.mailbox.get_message(mailbox_id, with_body=True)
            except MailboxError as exc:
                if exc.retryable:
                    continue
                gone.append(mailbox_id)
                continue
            if manual is not None:  # a Save Email: saved again as the user asked
                chosen.append((MessageFolder(folder_name), message, manual))
            else:
                by_folder.setdefault(MessageFolder(folder_name), []).append(message)
        self._clear_retries(gone)
        for folder, message, manual in chosen:
            self.process(folder, [message], manual_save=manual)
            if message.id not in self._retry_added:
                self._clear_retries([message.id])
        for folder, messages in by_folder.items():
            self.process(folder, messages)
            # Cleared only once processed (a crash keeps them), unless they failed again.
            self._clear_retries(m.id for m in messages if m.id not in self._retry_added)

    def _clear_retries(self, ids: Iterable[str]) -> None:
        with self.state.transaction() as tx:
            tx.executemany("DELETE FROM email_retries WHERE mailbox_id = ?", [(i,) for i in ids])

    def _add_retry(
        self, message: BoxMessage, folder: MessageFolder, manual: ManualSave | None = None
    ) -> None:
        """Re-read the message next session; a Save Email keeps the user's choice with it."""
        self._retry_added.add(message.id)
        chosen = _manual_to_json(manual)
        with self.state.transaction() as tx:
            tx.execute(
                "INSERT INTO email_retries (mailbox_id, folder, manual) VALUES (?, ?, ?)"
                " ON CONFLICT(mailbox_id) DO UPDATE SET folder = excluded.folder,"
                " manual = CASE WHEN excluded.manual != '' THEN excluded.manual ELSE manual END",
                (message.id, folder.value, json.dumps(chosen) if chosen else ""),
            )

    # -- one page ---------------------------------------------------------------------------
    def lookup(self, messages: Sequence[MailMessage]) -> dict[str, list[PersonMatch]]:
        addresses = {
            address_key(p.address) for m in messages for p in (*m.sender, *m.to, *m.cc) if p.address
        }
        if not addresses:
            return {}
        return self.gateway.matcher.resolve(sorted(addresses))

    def opportunities(self, matches: Mapping[str, list[PersonMatch]]) -> list[Opportunity]:
        if not self.settings.flag("email_link_opportunities"):
            return []
        accounts = sorted(
            {
                m.account_id
                for ms in matches.values()
                for m in ms
                if m.kind == "Contact" and m.account_id
            }
        )
        if not accounts:
            return []
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        return [
            Opportunity(
                id=o.id,
                account_id=o.account_id,
                owner_id=o.owner_id or "",
                is_closed=o.is_closed,
                last_modified=o.last_modified or epoch,
                close_date=o.close_date,
                created=o.created_date,
            )
            for o in self.gateway.matcher.opportunities_for_accounts(accounts, self.user_id)
        ]

    def process(
        self,
        folder: MessageFolder,
        messages: Sequence[BoxMessage],
        manual_save: ManualSave | None = None,
    ) -> None:
        """`manual_save` (the Save Email window) overrides how the folder says to save."""
        staged: list[tuple[BoxMessage, MailMessage]] = []
        for message in messages:
            how = manual_save if manual_save is not None else _manual_for(folder, message)
            rules = to_rules_message(message, how)
            if rules is not None:
                staged.append((message, rules))
        if not staged:
            return
        matches = self.lookup([r for _, r in staged])
        people = [
            PersonRecord(m.id, cast(PersonKind, m.kind), m.email, m.account_id)
            for ms in matches.values()
            for m in ms
            if m.kind in ("Contact", "Lead", "User")
        ]
        lookup = SalesforceLookup(people=people, opportunities=self.opportunities(matches))
        # Manual saves first: the threads they mark count for the page's automatic messages.
        manual = [(m, r) for m, r in staged if r.manual is not None]
        automatic = [(m, r) for m, r in staged if r.manual is None]
        context = self.context()
        decisions = [(m, r, decide_email(r, lookup, context, self.now)) for m, r in manual]
        for _, _, decision in decisions:
            self.apply_thread_mark(decision)
        if automatic:
            if any(d.mark_thread or d.unmark_thread for _, _, d in decisions):
                context = self.context()
            decisions += [(m, r, decide_email(r, lookup, context, self.now)) for m, r in automatic]
        saved = self.store.saves(d.key for _, _, d in decisions if d.share)
        plans: list[_Plan] = []
        seen_keys: set[str] = set()
        for message, rules, decision in decisions:
            self.result.reasons[decision.code] = self.result.reasons.get(decision.code, 0) + 1
            if not decision.share:
                self.result.skipped += 1
                continue
            row = saved.get(decision.key)
            if decision.key in seen_keys or (row is not None and row["state"] == "done"):
                self.result.already_saved += 1
                continue
            stamped = _stamped_id(message)
            if stamped is not None and row is None:
                self._record_done_external(message, decision, stamped)
                self.result.already_saved += 1
                continue
            seen_keys.add(decision.key)
            identifier = message.internet_message_id or decision.key
            plans.append(_Plan(message, rules, decision, identifier[:255]))
        if plans:
            self.save(folder, plans)

    def apply_thread_mark(self, decision: EmailDecision) -> None:
        if decision.mark_thread is not None:
            mark = decision.mark_thread
            with self.state.transaction() as tx:
                tx.execute(
                    "INSERT INTO email_threads (conversation_id, since, related_to_id)"
                    " VALUES (?, ?, ?) ON CONFLICT(conversation_id) DO UPDATE SET"
                    " since = MIN(since, excluded.since),"
                    " related_to_id = COALESCE(excluded.related_to_id, related_to_id)",
                    (mark.conversation_id, _iso(mark.since), mark.related_to_id),
                )
        if decision.unmark_thread is not None:
            with self.state.transaction() as tx:
                tx.execute(
                    "DELETE FROM email_threads WHERE conversation_id = ?",
                    (decision.unmark_thread,),
                )

    def _record_done_external(
        self, message: BoxMessage, decision: EmailDecision, sf_id: str
    ) -> None:
        with self.state.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO email_saves (save_key, target, state, mailbox_id,"
                " salesforce_id, path, subject, saved_at) VALUES (?, ?, 'done', ?, ?, ?, ?, ?)",
                (
                    decision.key,
                    decision.target,
                    message.id,
                    sf_id,
                    decision.path or "",
                    message.subject[:SUBJECT_LIMIT],
                    _iso(self.now),
                ),
            )

    # -- writing ----------------------------------------------------------------------------
    def describe_attachments(self, plan: _Plan) -> None:
        if not plan.message.has_attachments:
            return
        limit = self.max_mb * 1024 * 1024
        for ref in self.mailbox.attachments(plan.message.id):
            if ref.kind is AttachmentKind.REFERENCE:
                plan.links.append(f"{ref.name}: {ref.url}" if ref.url else ref.name)
            elif ref.kind is AttachmentKind.INLINE or ref.is_inline:
                continue
            elif ref.size > limit:
                plan.skipped_files.append(ref)
            else:
                plan.attachments.append(ref)

    def save(self, folder: MessageFolder, plans: list[_Plan]) -> None:
        # Intent rows first: a crash after the write finds them and looks the key up.
        with self.state.transaction() as tx:
            for plan in plans:
                self.store.add_intent(tx, plan)
        # Then the claims: another save of the same message (the window and a session at the
        # same moment) must not pass the lookup below before this one's create is recorded.
        claimed, done = self.store.claim([p.decision.key for p in plans], self.claim_token)
        mine: list[_Plan] = []
        for plan in plans:
            if plan.decision.key in claimed:
                mine.append(plan)
            elif plan.decision.key in done:
                self.result.already_saved += 1
            else:
                self.result.in_progress += 1
                if self.retry_when_busy:
                    self._add_retry(plan.message, folder, plan.rules_message.manual)
        if not mine:
            return
        try:
            self._save_claimed(folder, mine)
        finally:
            self.store.release([p.decision.key for p in mine], self.claim_token)

    def _save_claimed(self, folder: MessageFolder, plans: list[_Plan]) -> None:
        for plan in plans:
            try:
                self.describe_attachments(plan)
            except MailboxError as exc:
                log.info("attachments of %s unavailable: %s", plan.message.id, exc)
        # Look the keys up first (one query per page and kind): a crash between a write and its
        # record, or a state file lost since, finds the activity instead of writing it again.
        tasks = [p for p in plans if p.decision.target == "task"]
        emails = [p for p in plans if p.decision.target == "email_message"]
        if tasks:
            self.recover(tasks, "Task", SYNC_KEY_FIELD, _task_key)
            todo = [p for p in tasks if p.salesforce_id is None]
            if todo:
                rows = [task_fields(p, _notes(p, self.max_mb)) for p in todo]
                self._results(
                    folder, todo, self.gateway.writer.upsert("Task", SYNC_KEY_FIELD, rows)
                )
        if emails:
            self.recover(emails, "EmailMessage", "MessageIdentifier", _identifier)
            todo = [p for p in emails if p.salesforce_id is None]
            if todo:
                rows = [email_message_fields(p, _notes(p, self.max_mb)) for p in todo]
                results = self.gateway.writer.create(
                    "EmailMessage", rows, key_field="MessageIdentifier", key_is_external_id=False
                )
                self._results(folder, todo, results)
        for plan in plans:
            if plan.salesforce_id is not None:
                self.finish(folder, plan)

    def recover(
        self,
        plans: Sequence[_Plan],
        sobject: str,
        key_field: str,
        key_of: Callable[[_Plan], str],
    ) -> None:
        """Find activities already written for these plans, by their key field."""
        by_key = {key_of(p).lower(): p for p in plans if key_of(p)}
        keys = sorted(by_key)
        for start in range(0, len(keys), 100):
            chunk = keys[start : start + 100]
            soql = select(sobject, ["Id", key_field], f"{key_field} IN {soql_in(chunk)}")
            for record in self.gateway.client.query_all(soql, sobject=sobject):
                plan = by_key.get(str(record.get(key_field) or "").lower())
                if plan is not None and plan.salesforce_id is None:
                    plan.salesforce_id = record.id
                    plan.recovered = True

    def _results(
        self, folder: MessageFolder, plans: Sequence[_Plan], results: Sequence[WriteResult]
    ) -> None:
        for plan, result in zip(plans, results, strict=True):
            if result.success and result.id:
                plan.salesforce_id = result.id
                continue
            self.result.failed += 1
            error = result.error
            text = f"{error.status_code}: {error.message}" if error else "unknown error"
            self._issue(
                "error",
                f"Email not saved: {plan.message.subject or '(no subject)'}",
                text,
                plan.decision.key,
                {
                    "mailbox_id": plan.message.id,
                    "folder": folder.value,
                    "target": plan.decision.target,
                    "manual": _manual_to_json(plan.rules_message.manual),
                },
            )
            if error is None or error.transient:
                self._add_retry(plan.message, folder, plan.rules_message.manual)

    def finish(self, folder: MessageFolder, plan: _Plan) -> None:
        """Attachments first, then the record: a crash in between re-finds the activity (its
        key) and uploads only the attachments not recorded yet."""
        assert plan.salesforce_id is not None
        sf_id = plan.salesforce_id
        decision = plan.decision
        for ref in plan.skipped_files:
            self.result.attachments_skipped += 1
            self._attachment_done(decision.key, ref.id, "skipped", None)
            self._issue(
                "notice",
                f"Attachment not uploaded: {ref.name}",
                f"{ref.name} ({ref.size // 1024} KB) is larger than {self.max_mb} MB; the email "
                f"'{plan.message.subject}' was saved without it.",
                f"{decision.key}#{ref.id}",
                {"salesforce_id": sf_id, "size": ref.size},
            )
        if not self.upload(plan, sf_id):
            # Keep the save pending: the next session re-reads the message, finds the
            # activity by its key and uploads what is missing.
            self._add_retry(plan.message, folder, plan.rules_message.manual)
            return
        with self.state.transaction() as tx:
            tx.execute(
                "UPDATE email_saves SET state = 'done', salesforce_id = ?, saved_at = ?"
                " WHERE save_key = ?",
                (sf_id, _iso(self.now), decision.key),
            )
            if decision.unresolved:
                m = plan.message
                tx.execute(
                    "INSERT OR IGNORE INTO email_unresolved (save_key, salesforce_id, mailbox_id,"
                    " subject, sender, message_date, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        decision.key,
                        sf_id,
                        m.id,
                        m.subject,
                        m.from_.email if m.from_ else "",
                        _iso(plan.rules_message.when),
                        decision.reason,
                    ),
                )
        self.result.shared += 1
        if decision.unresolved:
            self.result.unresolved += 1
            self._issue(
                "notice",
                f"Saved without a link: {plan.message.subject or '(no subject)'}",
                decision.reason,
                decision.key,
                {"salesforce_id": sf_id, "mailbox_id": plan.message.id},
            )
        self.state.resolve_item_issues(ISSUE_KIND, [decision.key], "saved")
        if decision.path == "manual":
            try:
                self.mailbox.stamp_message(plan.message.id, sf_id)
            except MailboxError as exc:
                log.info("could not stamp message %s: %s", plan.message.id, exc)

    def upload(self, plan: _Plan, parent_id: str) -> bool:
        """Upload the file attachments not uploaded yet; False when one should be retried."""
        if not plan.attachments:
            return True
        done = {
            str(r[0])
            for r in self.state.db.connect()
            .execute(
                "SELECT attachment_id FROM email_attachments WHERE save_key = ?",
                (plan.decision.key,),
            )
            .fetchall()
        }
        # A recovered activity (a crash after an upload, or a lost state file) may have some
        # files already: those with the same name are not uploaded again.
        present = self._files_on(parent_id) if plan.recovered else Counter[str]()
        limit = self.max_mb * 1024 * 1024
        complete = True
        for ref in plan.attachments:
            if ref.id in done:
                continue
            name = safe_file_name(ref.name)
            item_key = f"{plan.decision.key}#{ref.id}"
            if present[name] > 0:
                present[name] -= 1
                self._attachment_done(plan.decision.key, ref.id, "uploaded", None)
                self.state.resolve_item_issues(ISSUE_KIND, [item_key], "uploaded")
                continue
            try:
                data = _read_bounded(ref.open(), limit)
                if data is None:
                    raise FileTooLarge(ref.name, ref.size, limit)
                uploaded = self.gateway.uploader.upload(
                    parent_id,
                    name,
                    data,
                    content_type=ref.content_type or "application/octet-stream",
                    as_attachment=self.as_attachment,
                )
            except FileTooLarge as exc:
                self.result.attachments_skipped += 1
                self._attachment_done(plan.decision.key, ref.id, "skipped", None)
                self._issue(
                    "notice",
                    f"Attachment not uploaded: {ref.name}",
                    exc.user_message,
                    item_key,
                    {"salesforce_id": parent_id},
                )
                continue
            except RecordFailed as exc:  # refused for good: reported, not retried
                self._attachment_done(plan.decision.key, ref.id, "failed", None)
                self._issue(
                    "error",
                    f"Attachment not uploaded: {ref.name}",
                    exc.user_message,
                    item_key,
                    {"salesforce_id": parent_id},
                )
                continue
            except (TransientError, MailboxError) as exc:
                complete = False
                self._issue(
                    "error",
                    f"Attachment not uploaded yet: {ref.name}",
                    str(exc),
                    item_key,
                    {"salesforce_id": parent_id},
                )
                continue
            self.result.attachments_uploaded += 1
            self._attachment_done(plan.decision.key, ref.id, "uploaded", uploaded.id)
            self.state.resolve_item_issues(ISSUE_KIND, [item_key], "uploaded")
        return complete

    def _files_on(self, parent_id: str) -> Counter[str]:
        """Names of the files already on an activity (one query)."""
        if self.as_attachment:
            soql = select("Attachment", ["Id", "Name"], f"ParentId = {soql_quote(parent_id)}")
            rows = self.gateway.client.query_all(soql, sobject="Attachment")
            return Counter(str(r.get("Name") or "") for r in rows)
        soql = select(
            "ContentVersion",
            ["Id", "Title"],
            f"FirstPublishLocationId = {soql_quote(parent_id)} AND IsLatest = true",
        )
        rows = self.gateway.client.query_all(soql, sobject="ContentVersion")
        return Counter(str(r.get("Title") or "") for r in rows)

    def _attachment_done(
        self, key: str, attachment_id: str, status: str, sf_id: str | None
    ) -> None:
        with self.state.transaction() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO email_attachments (save_key, attachment_id, state,"
                " salesforce_id) VALUES (?, ?, ?, ?)",
                (key, attachment_id, status, sf_id),
            )

    def _issue(
        self,
        category: Literal["error", "notice"],
        title: str,
        message: str,
        item_key: str,
        payload: Mapping[str, object],
    ) -> None:
        self.state.record_issue(
            run_id=self.run_id,
            kind=ISSUE_KIND,
            category=category,
            title=title,
            message=message,
            item_key=item_key,
            payload=payload,
        )
        self.result.issues.append(title)


def _read_bounded(chunks: Iterator[bytes], limit: int) -> bytes | None:
    """The content, or None as soon as it passes `limit` (the rest is not read)."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()
            return None
        parts.append(chunk)
    return b"".join(parts)


def _manual_to_json(manual: ManualSave | None) -> dict[str, object] | None:
    """The Save Email window's choice, to keep with a retry (folder and category saves are
    seen again in the mailbox, so they need nothing kept)."""
    if manual is None or manual.via != "window":
        return None
    return {
        "via": manual.via,
        "related_to_id": manual.related_to_id,
        "autosave_thread": manual.autosave_thread,
    }


def _manual_from_json(text: object) -> ManualSave | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("via") != "window":
        return None
    related = data.get("related_to_id")
    thread = data.get("autosave_thread")
    return ManualSave(
        via="window",
        related_to_id=related if isinstance(related, str) and related else None,
        autosave_thread=thread if isinstance(thread, bool) else None,
    )


def _task_key(plan: _Plan) -> str:
    return SYNC_KEY_PREFIX + plan.decision.key


def _identifier(plan: _Plan) -> str:
    return plan.message_identifier


def _stream(folder: MessageFolder) -> str:
    return f"graph:messages:{folder.value}"


def run_email_stage(
    gateway: SalesforceGateway,
    mailbox: Mailbox,
    state: SyncState,
    snapshot: SettingsSnapshot,
    *,
    user_id: str,
    own_addresses: Sequence[str],
    now: datetime,
    run_id: int | None,
    progress: Progress | None = None,
) -> EmailStageResult:
    """Save this session's mailbox messages as Salesforce activities; see the module docstring.

    Raises what the connectors raise for the whole session (reconnect needed, API limit); a
    single message's failure becomes a Sync Issue and a retry next session.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    stage = _Stage(
        gateway,
        mailbox,
        state,
        snapshot,
        user_id=user_id,
        own_addresses=own_addresses,
        now=now,
        run_id=run_id,
        progress=progress,
    )
    return stage.run()


def save_one_message(
    gateway: SalesforceGateway,
    mailbox: Mailbox,
    state: SyncState,
    snapshot: SettingsSnapshot,
    *,
    message: BoxMessage,
    manual: ManualSave,
    folder: MessageFolder,
    user_id: str,
    own_addresses: Sequence[str],
    now: datetime,
    run_id: int | None = None,
    claim_wait_s: float = CLAIM_WAIT_S,
) -> tuple[str, EmailStageResult]:
    """Save one message the user chose (the Save Email window) through the stage's manual path:
    same key, same intent rows, same claim, same recovery, so it is saved once whichever path
    comes first. While a session holds the message's claim this waits (up to `claim_wait_s`)
    and then answers from what that session recorded; past the wait the message is left on the
    retry list with the user's choice (``in_progress``).
    Returns the message's key and the counts (shared / already_saved / unresolved / failed)."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    rules = to_rules_message(message, manual)
    if rules is None:
        raise ValueError("the message has no date")
    deadline = time.monotonic() + claim_wait_s
    while True:
        last = time.monotonic() >= deadline
        stage = _Stage(
            gateway,
            mailbox,
            state,
            snapshot,
            user_id=user_id,
            own_addresses=own_addresses,
            now=now,
            run_id=run_id,
            progress=None,
        )
        stage.retry_when_busy = last
        try:
            stage.process(folder, [message], manual_save=manual)
        finally:
            stage.close()
        if last or not stage.result.in_progress:
            return idempotency_key(rules), stage.result
        time.sleep(0.1)


def unresolved_emails(state: SyncState) -> list[dict[str, str]]:
    """The Unresolved view: saved without a link and not linked since."""
    columns = ("save_key", "salesforce_id", "mailbox_id", "subject", "sender", "message_date")
    rows = state.db.connect().execute(
        f"SELECT {', '.join(columns)}, reason FROM email_unresolved WHERE linked_to IS NULL"
        " ORDER BY message_date DESC"
    )
    return [{k: str(r[k]) for k in (*columns, "reason")} for r in rows.fetchall()]


_WHAT_PREFIXES = ("001", "006")
_WHO_PREFIXES = ("003", "00Q")


def link_unresolved(
    gateway: SalesforceGateway, state: SyncState, save_key: str, record_id: str
) -> None:
    """Link an email saved without a link to a record the user chose (the Unresolved view).

    An Account or Opportunity becomes the What, a Contact or Lead a Who. A Task is updated; a
    sent EmailMessage is read-only, so its What goes on the Task Enhanced Email made for it
    (ActivityId) and a Who becomes an EmailMessageRelation. Raises RecordFailed if refused.
    """
    row = (
        state.db.connect()
        .execute(
            "SELECT u.salesforce_id, s.target FROM email_unresolved u"
            " JOIN email_saves s ON s.save_key = u.save_key"
            " WHERE u.save_key = ? AND u.linked_to IS NULL",
            (save_key,),
        )
        .fetchone()
    )
    if row is None:
        raise KeyError(save_key)
    activity_id, target = str(row[0]), str(row[1])
    is_what = record_id.startswith(_WHAT_PREFIXES)
    if not is_what and not record_id.startswith(_WHO_PREFIXES):
        raise ValueError(f"{record_id} is not an Account, Opportunity, Contact or Lead")
    results: list[WriteResult] = []
    if target == "task":
        field_name = "WhatId" if is_what else "WhoId"
        results = gateway.writer.update("Task", [{"Id": activity_id, field_name: record_id}])
    elif is_what:
        [message] = gateway.fetch("EmailMessage", [activity_id], ["ActivityId"])
        task_id = message.get("ActivityId")
        if task_id:
            results = gateway.writer.update("Task", [{"Id": task_id, "WhatId": record_id}])
    else:
        results = gateway.writer.create(
            "EmailMessageRelation",
            [{"EmailMessageId": activity_id, "RelationId": record_id, "RelationType": "ToAddress"}],
        )
    failed = [r for r in results if not r.success]
    if failed:
        raise RecordFailed(list(failed[0].errors))
    with state.transaction() as tx:
        tx.execute(
            "UPDATE email_unresolved SET linked_to = ? WHERE save_key = ?", (record_id, save_key)
        )
    for issue in state.open_issues(kind=ISSUE_KIND, category="notice"):
        if issue.item_key == save_key:
            state.resolve_issue(issue.id, "linked")
