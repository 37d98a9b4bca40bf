"""Forward-only schema migrations.

Each component appends its own numbered step here; numbers are never reused or edited once
released, so a database written by any older version can always be brought forward.
Numbers: 1 foundation; 2 sync engine (links, intents); 3 Salesforce caches; 4 mailbox state;
5 email claims and retry choices;
new steps take the next free number. Every step's SQL lives in this file so the list is complete
whatever modules were imported.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    script: str | Callable[[sqlite3.Connection], None]


FOUNDATION = """
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE accounts (
    kind TEXT PRIMARY KEY,             -- 'salesforce' | 'microsoft' | 'google'
    username TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    endpoint TEXT NOT NULL DEFAULT '',  -- instance URL or authority; never a token
    state TEXT NOT NULL DEFAULT 'connected',  -- 'connected' | 'reconnect'
    detail TEXT NOT NULL DEFAULT '{}',  -- non-secret metadata as JSON (org id, user id, ...)
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    trigger TEXT NOT NULL DEFAULT 'timer',   -- 'timer' | 'manual' | 'cli'
    status TEXT NOT NULL DEFAULT 'running',  -- 'running' | 'ok' | 'partial' | 'failed' | 'not_connected'
    message TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '{}'       -- the session summary as JSON
);
CREATE INDEX sync_runs_started ON sync_runs(started_at);
CREATE TABLE sync_issues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES sync_runs(id) ON DELETE SET NULL,
    kind TEXT NOT NULL,                      -- object kind: 'contact', 'event', 'task', 'email', ...
    category TEXT NOT NULL,                  -- 'error' | 'conflict' | 'mass_delete' | 'notice'
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    item_key TEXT NOT NULL DEFAULT '',       -- what the issue is about (a link id, an address ...)
    payload TEXT NOT NULL DEFAULT '{}',      -- both versions of a conflict, the record that failed
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    resolved_at TEXT,
    resolution TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sync_issues_open ON sync_issues(resolved_at, kind);
CREATE TABLE cursors (
    stream TEXT PRIMARY KEY,                 -- e.g. 'graph:messages:inbox', 'sf:Contact'
    token TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""

SALESFORCE_CACHES = """
CREATE TABLE sf_email_matches (
    org TEXT NOT NULL,                       -- Salesforce org id: a new org never sees old matches
    address TEXT NOT NULL,                   -- lower-cased email address
    matches TEXT NOT NULL,                   -- JSON list of {kind, id, name, email, account_id, owner_id}
    fetched_at REAL NOT NULL,                -- unix seconds
    expires_at REAL NOT NULL,
    PRIMARY KEY (org, address)
);
CREATE INDEX sf_email_matches_expiry ON sf_email_matches(expires_at);
CREATE TABLE sf_org_facts (
    org TEXT NOT NULL,
    key TEXT NOT NULL,                       -- e.g. 'enhanced_email'
    value TEXT NOT NULL,                     -- JSON
    expires_at REAL NOT NULL,
    PRIMARY KEY (org, key)
);
"""

SYNC_ENGINE = """
CREATE TABLE sync_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,                      -- 'contact' | 'event' | 'task'
    state TEXT NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'mailbox_detached', 'salesforce_detached')),
    mailbox_id TEXT,                         -- NULL once detached on that side
    mailbox_version TEXT NOT NULL DEFAULT '',
    mailbox_hash TEXT NOT NULL DEFAULT '',   -- normalized hash of the synced fields
    salesforce_id TEXT,
    salesforce_version TEXT NOT NULL DEFAULT '',
    salesforce_hash TEXT NOT NULL DEFAULT '',
    base TEXT NOT NULL DEFAULT '{}',         -- last synced common field values (three-way merge)
    synced_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX sync_links_mailbox ON sync_links(kind, mailbox_id);
CREATE UNIQUE INDEX sync_links_salesforce ON sync_links(kind, salesforce_id);
CREATE TABLE sync_intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('mailbox', 'salesforce')),  -- where the create goes
    correlation_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL DEFAULT '{}',      -- source side, source id, the fields written
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX sync_intents_pending ON sync_intents(kind, side, state);
CREATE TABLE sync_retries (
    kind TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('mailbox', 'salesforce')),
    item_id TEXT NOT NULL,                   -- re-read next session: its write failed
    PRIMARY KEY (kind, side, item_id)
);
"""

EMAIL_ACTIVITIES = """
CREATE TABLE email_state (
    key TEXT PRIMARY KEY,                    -- 'autoshare_on', 'autoshare_enabled_at', ...
    value TEXT NOT NULL
);
CREATE TABLE email_saves (
    save_key TEXT PRIMARY KEY,               -- the message's idempotency key (email_rules)
    target TEXT NOT NULL,                    -- 'task' | 'email_message'
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    message_identifier TEXT NOT NULL DEFAULT '',  -- EmailMessage.MessageIdentifier (lookup key)
    mailbox_id TEXT NOT NULL DEFAULT '',     -- immutable message id
    salesforce_id TEXT,                      -- Task or EmailMessage id once created
    path TEXT NOT NULL DEFAULT '',           -- 'manual' | 'thread' | 'autoshare'
    subject TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    saved_at TEXT
);
CREATE INDEX email_saves_mailbox ON email_saves(mailbox_id);
CREATE TABLE email_attachments (
    save_key TEXT NOT NULL,
    attachment_id TEXT NOT NULL,
    state TEXT NOT NULL,                     -- 'uploaded' | 'skipped'
    salesforce_id TEXT,
    PRIMARY KEY (save_key, attachment_id)
);
CREATE TABLE email_unresolved (
    save_key TEXT PRIMARY KEY,
    salesforce_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    sender TEXT NOT NULL DEFAULT '',
    message_date TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    linked_to TEXT,                          -- set when the user links it to a record
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE email_threads (
    conversation_id TEXT PRIMARY KEY,
    since TEXT NOT NULL,                     -- ISO UTC: later messages are saved too
    related_to_id TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE email_retries (
    mailbox_id TEXT PRIMARY KEY,             -- a message whose save failed: re-read next session
    folder TEXT NOT NULL
);
"""

EMAIL_CLAIMS = """
ALTER TABLE email_saves ADD COLUMN claim_token TEXT;   -- who is writing it now (session/window)
ALTER TABLE email_saves ADD COLUMN claimed_at TEXT;    -- ISO UTC; an old claim is a crash's
-- the Save Email window's choice (Related To, thread box) as JSON, kept for the retry
ALTER TABLE email_retries ADD COLUMN manual TEXT NOT NULL DEFAULT '';
"""

MIGRATIONS: list[Migration] = [
    Migration(1, "foundation", FOUNDATION),
    Migration(2, "sync engine", SYNC_ENGINE),
    Migration(3, "salesforce caches", SALESFORCE_CACHES),
    Migration(4, "email activities", EMAIL_ACTIVITIES),
    Migration(5, "email claims and retry choices", EMAIL_CLAIMS),
]


if len({m.version for m in MIGRATIONS}) != len(MIGRATIONS):
    raise RuntimeError("two migrations share a version number")


def latest_version() -> int:
    return max(m.version for m in MIGRATIONS)
