"""The side repository the engine drives: one per side (mailbox, Salesforce) per kind.

Shaped after Outlook CalDav Synchronizer's repositories: read changes since a cursor, fetch by id,
conditional writes in batches with per-item results, and a correlation-key lookup so a create
interrupted by a crash is found again instead of made twice. Connector adapters implement it with a
field mapper (provider JSON <-> the neutral names of `fields.py`); the engine never sees transport.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from scc_desktop.sync.fields import FieldValue, Kind

Side = Literal["mailbox", "salesforce"]
SIDES: tuple[Side, Side] = ("mailbox", "salesforce")


def other_side(side: Side) -> Side:
    return "salesforce" if side == "mailbox" else "mailbox"


@dataclass(frozen=True)
class SideItem:
    """One record as a side holds it. `version` is the etag/changeKey/SystemModstamp.

    `modified_at` drives the newest-wins policy; `correlation_key` is the key stamped at create.
    `in_scope` is False only from `get`, for an item that exists but is outside this side's sync
    scope (calendar window, folder or category, Salesforce filter).
    """

    id: str
    version: str
    fields: Mapping[str, FieldValue]
    correlation_key: str | None = None
    modified_at: datetime | None = None
    in_scope: bool = True


@dataclass(frozen=True)
class ChangePage:
    """One page of changes. `full` marks a complete listing of the scope (linked ids missing from
    it are checked with `get`: gone, or only out of scope).

    `removed` items were deleted; `departed` ones still exist but left the sync scope (an event
    that fell out of the window, a contact moved out of the folder): their links are set aside and
    nothing is deleted on the other side. `cursor` is the position after this page; the engine
    stores it only once the page's actions and links are saved.
    """

    upserted: Sequence[SideItem]
    removed: Sequence[str]
    cursor: str
    full: bool = False
    departed: Sequence[str] = ()


@dataclass(frozen=True)
class NewItem:
    """A create; the adapter stamps `correlation_key` where `find_by_correlation_key` looks."""

    correlation_key: str
    fields: Mapping[str, FieldValue]


@dataclass(frozen=True)
class ItemUpdate:
    """A conditional update: fails (transient) when the item is no longer at `expected_version`.

    `fields` holds every synced field's value; `changed` names the ones that differ, for a PATCH.
    """

    id: str
    expected_version: str
    fields: Mapping[str, FieldValue]
    changed: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ItemDelete:
    """A conditional delete; an item already gone counts as deleted (ok)."""

    id: str
    expected_version: str


@dataclass(frozen=True)
class WriteResult:
    """Per-item outcome of a batch write, in the order of the request.

    On success `id` and `version` are the item's after the write (stored so our own writes don't
    come back as changes), and `fields`, when the adapter can tell, the synced fields as the side
    stored them (its read-back): a side that cannot keep a value (no "tentative" show-as, an
    unknown company) returns its coarser value, so the engine hashes what is there and does not
    mistake the difference for a user edit. None means "stored as sent". On failure `error` is a
    sentence for the user and `transient` says whether a retry may succeed (throttling, a version
    race) or not (validation, permissions).
    """

    ok: bool
    id: str | None = None
    version: str | None = None
    error: str = ""
    transient: bool = False
    fields: Mapping[str, FieldValue] | None = None

    @classmethod
    def success(
        cls, item_id: str, version: str, fields: Mapping[str, FieldValue] | None = None
    ) -> WriteResult:
        return cls(True, item_id, version, fields=fields)

    @classmethod
    def failure(cls, message: str, *, transient: bool) -> WriteResult:
        return cls(False, error=message, transient=transient)


class SideRepository(Protocol):
    """What an adapter implements for one side and one kind; raising fails the kind this time."""

    @property
    def side(self) -> Side: ...

    @property
    def kind(self) -> Kind: ...

    @property
    def fields(self) -> frozenset[str]:
        """The neutral field names this side stores; only fields both sides store are synced."""
        ...

    # Optional: `read_only: frozenset[str]`, the fields among `fields` this side stores but never
    # accepts from the other side (mailbox attendees: writing them would send invitations). Such
    # a field syncs only from this side to the other; see `read_only_fields`.

    @property
    def max_batch(self) -> int:
        """Most items per create/update/delete call (200 for sObject Collections, 20 for $batch)."""
        ...

    def read_changes(self, cursor: str | None) -> Iterator[ChangePage]:
        """Pages of changes since `cursor`; with None (or an expired cursor) a full listing."""
        ...

    def get(self, ids: Sequence[str]) -> list[SideItem]:
        """The items among `ids` that still exist, in scope or not (see `SideItem.in_scope`);
        deleted ones are simply left out."""
        ...

    def create(self, items: Sequence[NewItem]) -> list[WriteResult]: ...

    def update(self, items: Sequence[ItemUpdate]) -> list[WriteResult]: ...

    def delete(self, items: Sequence[ItemDelete]) -> list[WriteResult]: ...

    def find_by_correlation_key(self, keys: Sequence[str]) -> dict[str, SideItem]:
        """Items created with any of `keys`, by key; the crash-recovery lookup."""
        ...

    def find_candidates(self, probes: Sequence[Mapping[str, FieldValue]]) -> list[SideItem]:
        """In-scope items that may match any probe on the kind's match keys (`MATCH_KEYS`).

        A superset is fine (the engine matches exactly); the Salesforce adapter does one query per
        batch of emails/names, the mailbox adapter a filter or its local index.
        """
        ...


def read_only_fields(repo: object) -> frozenset[str]:
    """A repository's `read_only` fields (none when it declares no such attribute)."""
    value: object = getattr(repo, "read_only", frozenset())
    return frozenset(value) if isinstance(value, (set, frozenset)) else frozenset()


@runtime_checkable
class CountsApiCalls(Protocol):
    """Optional: a repository that counts its remote calls, per service ('salesforce', 'graph')."""

    def api_calls(self) -> Mapping[str, int]: ...
