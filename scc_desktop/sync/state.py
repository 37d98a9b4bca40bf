"""Typed access to the engine's tables: links, intents, retries, cursors, runs and issues.

Every write goes through `Database.transaction()`, so the engine can group a batch's link rows,
intent completions and cursors into one commit; a crash leaves either all of them or none.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, cast

from scc_desktop.store.db import Database
from scc_desktop.sync.fields import FieldValue, Kind, from_json, normalize, to_json
from scc_desktop.sync.ports import Side

LinkState = Literal["active", "mailbox_detached", "salesforce_detached"]
IssueCategory = Literal["error", "conflict", "mass_delete", "notice"]


@dataclass(frozen=True)
class Link:
    """A synced pair. A detached link has lost one side on purpose and keeps the other from
    being re-created there.

    `base` holds the last synced values (the richest each field was synced with); `stored`, per
    side, the fields that side keeps differently (a lossy side: Busy for "tentative", no company),
    so `side_base(side)` is exactly what that side held after the sync and what its hash covers.
    """

    id: int | None
    kind: Kind
    mailbox_id: str | None
    mailbox_version: str
    mailbox_hash: str
    salesforce_id: str | None
    salesforce_version: str
    salesforce_hash: str
    base: Mapping[str, FieldValue]
    state: LinkState = "active"
    stored: Mapping[str, Mapping[str, FieldValue]] = field(default_factory=dict)
    # a calendar link set aside: the latest known end of its item (UTC '...Z'); once that is
    # before the calendar window the link is pruned (`SyncState.prune_detached`)
    aside_until: str | None = None

    def side_base(self, side: Side) -> dict[str, FieldValue]:
        """The values `side` held after the last sync: `base` with that side's own values."""
        return {**self.base, **self.stored.get(side, {})}

    def side_id(self, side: Side) -> str | None:
        return self.mailbox_id if side == "mailbox" else self.salesforce_id

    def side_version(self, side: Side) -> str:
        return self.mailbox_version if side == "mailbox" else self.salesforce_version

    def side_hash(self, side: Side) -> str:
        return self.mailbox_hash if side == "mailbox" else self.salesforce_hash

    def cleared(self, side: Side) -> Link:
        """Without `side`'s id, version and hash (its item is gone)."""
        stored = {s: v for s, v in self.stored.items() if s != side}
        if side == "mailbox":
            return replace(
                self, mailbox_id=None, mailbox_version="", mailbox_hash="", stored=stored
            )
        return replace(
            self, salesforce_id=None, salesforce_version="", salesforce_hash="", stored=stored
        )

    def detached(self, side: Side) -> Link:
        """Marked as no longer synced on `side` (gone, or out of scope when the id is kept)."""
        return replace(
            self, state="mailbox_detached" if side == "mailbox" else "salesforce_detached"
        )


@dataclass(frozen=True)
class Intent:
    id: int
    kind: Kind
    side: Side
    correlation_key: str
    payload: Mapping[str, object]


@dataclass(frozen=True)
class Issue:
    id: int
    run_id: int | None
    kind: str
    category: str
    title: str
    message: str
    item_key: str
    payload: Mapping[str, object]
    resolution: str

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "category": self.category,
            "title": self.title,
            "message": self.message,
            "item_key": self.item_key,
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_LINK_COLUMNS = (
    "id, kind, state, mailbox_id, mailbox_version, mailbox_hash, "
    "salesforce_id, salesforce_version, salesforce_hash, base"
)


def _link(row: sqlite3.Row) -> Link:
    kind = cast(Kind, row["kind"])
    return Link(
        id=int(row["id"]),
        kind=kind,
        mailbox_id=row["mailbox_id"],
        mailbox_version=row["mailbox_version"],
        mailbox_hash=row["mailbox_hash"],
        salesforce_id=row["salesforce_id"],
        salesforce_version=row["salesforce_version"],
        salesforce_hash=row["salesforce_hash"],
        base=from_json(kind, row["base"]),
        state=cast(LinkState, row["state"]),
        stored=_stored_from_json(kind, row["base"]),
        aside_until=_aside_from_json(row["base"]),
    )


_STORED_KEYS: Mapping[Side, str] = {"mailbox": "@mailbox", "salesforce": "@salesforce"}
"""Keys of the per-side values inside the `base` column's JSON (no field name starts with @)."""


_ASIDE_KEY = "@until"
"""Key of `Link.aside_until` inside the `base` column's JSON."""


def _base_json(link: Link) -> str:
    """`base` as a flat object, plus each side's own values under "@mailbox"/"@salesforce"
    and a set-aside link's `aside_until` under "@until"."""
    if not any(link.stored.get(side) for side in _STORED_KEYS) and link.aside_until is None:
        return to_json(link.base)
    body = cast(dict[str, object], json.loads(to_json(link.base)))
    for side, key in _STORED_KEYS.items():
        values = link.stored.get(side)
        if values:
            body[key] = json.loads(to_json(values))
    if link.aside_until is not None:
        body[_ASIDE_KEY] = link.aside_until
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


def _aside_from_json(text: str) -> str | None:
    raw = json.loads(text) if text else {}
    value = raw.get(_ASIDE_KEY) if isinstance(raw, dict) else None
    return value if isinstance(value, str) and value else None


def _stored_from_json(kind: Kind, text: str) -> dict[str, Mapping[str, FieldValue]]:
    raw = json.loads(text) if text else {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Mapping[str, FieldValue]] = {}
    for side, key in _STORED_KEYS.items():
        values = raw.get(key)
        if isinstance(values, dict) and values:
            out[side] = normalize(kind, cast(dict[str, object], values))
    return out


def _issue(row: sqlite3.Row) -> Issue:
    return Issue(
        id=int(row["id"]),
        run_id=row["run_id"],
        kind=row["kind"],
        category=row["category"],
        title=row["title"],
        message=row["message"],
        item_key=row["item_key"],
        payload=cast(dict[str, object], json.loads(row["payload"] or "{}")),
        resolution=row["resolution"],
    )


class SyncState:
    """The engine's view of the state file."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.db.transaction() as conn:
            yield conn

    # --- links ------------------------------------------------------------------------------

    def links(self, kind: Kind) -> list[Link]:
        rows = self.db.connect().execute(
            f"SELECT {_LINK_COLUMNS} FROM sync_links WHERE kind = ? ORDER BY id", (kind,)
        )
        return [_link(r) for r in rows]

    def link(self, link_id: int) -> Link | None:
        row = (
            self.db.connect()
            .execute(f"SELECT {_LINK_COLUMNS} FROM sync_links WHERE id = ?", (link_id,))
            .fetchone()
        )
        return None if row is None else _link(row)

    def links_for(self, kind: Kind, side: Side, ids: Iterable[str]) -> dict[str, Link]:
        """Links by this side's id, for the ids that have one."""
        column = f"{side}_id"
        found: dict[str, Link] = {}
        wanted = list(dict.fromkeys(ids))
        conn = self.db.connect()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT {_LINK_COLUMNS} FROM sync_links WHERE kind = ? AND {column} IN ({marks})",
                (kind, *chunk),
            )
            for row in rows:
                link = _link(row)
                item_id = link.side_id(side)
                if item_id is not None:
                    found[item_id] = link
        return found

    def has_links(self, kind: Kind, salesforce_prefix: str = "") -> bool:
        """Whether `kind` has any link (whose Salesforce id starts with `salesforce_prefix`)."""
        row = (
            self.db.connect()
            .execute(
                "SELECT 1 FROM sync_links WHERE kind = ? AND salesforce_id LIKE ? LIMIT 1",
                (kind, salesforce_prefix.replace("%", "").replace("_", "") + "%"),
            )
            .fetchone()
        )
        if row is not None or salesforce_prefix:
            return row is not None
        row = (
            self.db.connect()
            .execute("SELECT 1 FROM sync_links WHERE kind = ? LIMIT 1", (kind,))
            .fetchone()
        )
        return row is not None

    def count_active_links(self, kind: Kind) -> int:
        row = (
            self.db.connect()
            .execute("SELECT COUNT(*) FROM sync_links WHERE kind = ? AND state = 'active'", (kind,))
            .fetchone()
        )
        return int(row[0])

    def save_link(self, link: Link) -> int:
        """Insert (id None) or replace a link; returns its id."""
        values = (
            link.kind,
            link.state,
            link.mailbox_id,
            link.mailbox_version,
            link.mailbox_hash,
            link.salesforce_id,
            link.salesforce_version,
            link.salesforce_hash,
            _base_json(link),
            _now(),
        )
        with self.transaction() as conn:
            if link.id is None:
                cur = conn.execute(
                    "INSERT INTO sync_links (kind, state, mailbox_id, mailbox_version,"
                    " mailbox_hash, salesforce_id, salesforce_version, salesforce_hash, base,"
                    " synced_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
                return int(cur.lastrowid or 0)
            conn.execute(
                "UPDATE sync_links SET kind = ?, state = ?, mailbox_id = ?, mailbox_version = ?,"
                " mailbox_hash = ?, salesforce_id = ?, salesforce_version = ?,"
                " salesforce_hash = ?, base = ?, synced_at = ? WHERE id = ?",
                (*values, link.id),
            )
            return link.id

    def delete_link(self, link_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM sync_links WHERE id = ?", (link_id,))

    def prune_detached(self, kind: Kind, before: str) -> int:
        """Forget detached links (set aside, or tombstones) of `kind` whose item ended before
        `before` (UTC text '...Z'): the latest end known when it was set aside, else the last
        synced end (or start). Such an item lies before the calendar window on both sides, so
        the link can no longer re-attach anything. Returns how many were pruned."""
        with self.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM sync_links WHERE kind = ? AND state != 'active' AND COALESCE("
                "json_extract(base, '$.\"@until\"'), json_extract(base, '$.end'),"
                " json_extract(base, '$.start')) < ?",
                (kind, before),
            )
            return cur.rowcount

    # --- intents ----------------------------------------------------------------------------

    def add_intents(
        self, kind: Kind, side: Side, intents: Sequence[tuple[str, Mapping[str, object]]]
    ) -> None:
        """Journal creates before they are sent; committed on return."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO sync_intents (kind, side, correlation_key, payload, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(kind, side, key, json.dumps(payload), _now()) for key, payload in intents],
            )

    def pending_intents(self, kind: Kind, side: Side) -> list[Intent]:
        rows = self.db.connect().execute(
            "SELECT id, kind, side, correlation_key, payload FROM sync_intents"
            " WHERE kind = ? AND side = ? AND state = 'pending' ORDER BY id",
            (kind, side),
        )
        return [
            Intent(
                int(r["id"]),
                cast(Kind, r["kind"]),
                cast(Side, r["side"]),
                r["correlation_key"],
                cast(dict[str, object], json.loads(r["payload"])),
            )
            for r in rows
        ]

    def finish_intents(self, keys: Iterable[str]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE sync_intents SET state = 'done' WHERE correlation_key = ?",
                [(k,) for k in keys],
            )

    def prune_intents(self) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM sync_intents WHERE state = 'done'")

    # --- retries ----------------------------------------------------------------------------

    def retry_ids(self, kind: Kind, side: Side) -> set[str]:
        rows = self.db.connect().execute(
            "SELECT item_id FROM sync_retries WHERE kind = ? AND side = ?", (kind, side)
        )
        return {r[0] for r in rows}

    def add_retries(self, kind: Kind, side: Side, ids: Iterable[str]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO sync_retries (kind, side, item_id) VALUES (?, ?, ?)",
                [(kind, side, i) for i in ids],
            )

    def clear_retries(self, kind: Kind, side: Side, ids: Iterable[str]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "DELETE FROM sync_retries WHERE kind = ? AND side = ? AND item_id = ?",
                [(kind, side, i) for i in ids],
            )

    # --- cursors ----------------------------------------------------------------------------

    def cursor(self, stream: str) -> str | None:
        row = (
            self.db.connect()
            .execute("SELECT token FROM cursors WHERE stream = ?", (stream,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def set_cursor(self, stream: str, token: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO cursors (stream, token, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(stream) DO UPDATE SET token = excluded.token,"
                " updated_at = excluded.updated_at",
                (stream, token, _now()),
            )

    # --- runs -------------------------------------------------------------------------------

    def start_run(self, trigger: str) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO sync_runs (started_at, trigger) VALUES (?, ?)", (_now(), trigger)
            )
            return int(cur.lastrowid or 0)

    def close_interrupted_runs(self) -> int:
        """Sessions still 'running' were killed (one session at a time per profile)."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE sync_runs SET status = 'failed', finished_at = ?,"
                " message = 'interrupted' WHERE status = 'running'",
                (_now(),),
            )
            return cur.rowcount

    def finish_run(
        self, run_id: int, status: str, message: str, summary: Mapping[str, object]
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE sync_runs SET finished_at = ?, status = ?, message = ?, summary = ?"
                " WHERE id = ?",
                (_now(), status, message, json.dumps(summary), run_id),
            )

    # --- issues -----------------------------------------------------------------------------

    def record_issue(
        self,
        *,
        run_id: int | None,
        kind: str,
        category: IssueCategory,
        title: str,
        message: str,
        item_key: str,
        payload: Mapping[str, object],
    ) -> int:
        """Open an issue, or refresh the open one about the same item, so repeats don't pile up."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT id FROM sync_issues WHERE kind = ? AND category = ? AND item_key = ?"
                " AND resolved_at IS NULL",
                (kind, category, item_key),
            ).fetchone()
            body = json.dumps(payload, default=str)
            if row is not None:
                conn.execute(
                    "UPDATE sync_issues SET run_id = ?, title = ?, message = ?, payload = ?"
                    " WHERE id = ?",
                    (run_id, title, message, body, row[0]),
                )
                return int(row[0])
            cur = conn.execute(
                "INSERT INTO sync_issues (run_id, kind, category, title, message, item_key,"
                " payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, kind, category, title, message, item_key, body, _now()),
            )
            return int(cur.lastrowid or 0)

    def open_issues(self, kind: str | None = None, category: str | None = None) -> list[Issue]:
        sql = "SELECT * FROM sync_issues WHERE resolved_at IS NULL"
        args: list[str] = []
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        if category is not None:
            sql += " AND category = ?"
            args.append(category)
        return [_issue(r) for r in self.db.connect().execute(sql + " ORDER BY id", args)]

    def resolve_issue(self, issue_id: int, resolution: str) -> None:
        """Close an issue; 'allow' on a mass-delete issue lets the next session apply it."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE sync_issues SET resolved_at = ?, resolution = ? WHERE id = ?",
                (_now(), resolution, issue_id),
            )

    def keep_version(self, issue_id: int, side: Side) -> None:
        """The user's "keep this one" on a conflict: applied by the next session of its kind."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE sync_issues SET resolution = ? WHERE id = ? AND category = 'conflict'"
                " AND resolved_at IS NULL",
                (f"keep_{side}", issue_id),
            )

    def resolve_item_issues(self, kind: str, item_keys: Iterable[str], resolution: str) -> None:
        """Close open errors about items that have now synced."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE sync_issues SET resolved_at = ?, resolution = ? WHERE kind = ?"
                " AND category = 'error' AND item_key = ? AND resolved_at IS NULL",
                [(_now(), resolution, kind, key) for key in item_keys],
            )

    def take_mass_delete_answer(self, kind: str) -> str | None:
        """'allow' or 'restore', once per answer to a mass-deletion prompt of this kind."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT id, resolution FROM sync_issues WHERE kind = ? AND category = 'mass_delete'"
                " AND resolution IN ('allow', 'restore') ORDER BY id DESC LIMIT 1",
                (kind,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE sync_issues SET resolution = resolution || '_used' WHERE id = ?", (row[0],)
            )
            return str(row[1])
