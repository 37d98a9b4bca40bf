"""The Mailbox protocol: what the sync engine needs from a mailbox, whoever hosts it.

Reads are delta streams: the engine passes the cursor it saved last (None the first time) and
iterates pages; after applying a page it saves `page.cursor` in the same transaction as its
links. Nothing is held in memory beyond one page. Writes take batches and return one result
per input, in input order; a failed item never fails the others. Creates carry a correlation
key (`sync_key` on the item) stamped on the created item, so that after a crash between the
call and the saving of the link the engine finds the item with `find_*_by_key` instead of
creating it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from scc_desktop.errors import NeedsUser
from scc_desktop.mailbox.types import (
    Address,
    AttachmentRef,
    CalendarEvent,
    Contact,
    Delete,
    DeltaPage,
    MailMessage,
    MessageFolder,
    SetupInfo,
    TodoTask,
    Update,
    WriteResult,
)

SALESFORCE_EMAILS_FOLDER = "Salesforce Emails"
SALESFORCE_CONTACTS_FOLDER = "Salesforce Contacts"
SALESFORCE_TASKS_LIST = "Salesforce Tasks"
SALESFORCE_CATEGORY = "Salesforce"


class ReconnectRequired(NeedsUser):
    """The account's sign-in expired or was revoked: the user must sign in again.

    `user_message` is what the tray shows ("Reconnect Microsoft 365", "Reconnect Google").
    """

    def __init__(self, user_message: str, detail: str = "") -> None:
        super().__init__(f"{user_message}: {detail}" if detail else user_message)
        self.user_message = user_message
        self.detail = detail


class MailboxError(Exception):
    """A mailbox call failed after retries. `retryable` tells a transient failure (the next
    session may succeed) from a permanent one."""

    def __init__(
        self, message: str, *, status: int = 0, code: str = "", retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable


@runtime_checkable
class Mailbox(Protocol):
    """One signed-in mailbox (Microsoft 365 through Graph, or Google)."""

    provider: str  # 'microsoft' | 'google'

    # -- setup and identity ------------------------------------------------------------
    def me(self) -> Address:
        """The signed-in user's address (the mailbox owner)."""
        ...

    def ensure_setup(self) -> SetupInfo:
        """Create once and then find: the "Salesforce Emails" folder, the "Salesforce Contacts"
        folder, the "Salesforce Tasks" list and the "Salesforce" category."""
        ...

    # -- delta readers -----------------------------------------------------------------
    def read_messages(
        self,
        folder: MessageFolder,
        cursor: str | None,
        *,
        with_body: bool = True,
        received_since: datetime | None = None,
    ) -> Iterator[DeltaPage[MailMessage]]:
        """Changes of one message folder since `cursor`. `received_since` bounds a first
        (full) pass; it is ignored when resuming from a cursor."""
        ...

    def read_contacts(self, cursor: str | None) -> Iterator[DeltaPage[Contact]]:
        """Changes of the contacts in the "Salesforce Contacts" folder."""
        ...

    def list_categorized_contacts(self, category: str = SALESFORCE_CATEGORY) -> Iterator[Contact]:
        """Contacts outside the "Salesforce Contacts" folder that carry the category (a full
        list, not a delta: the engine compares it with its links)."""
        ...

    def default_contacts_folder(self) -> str:
        """The id of the default Contacts folder, "" when the mailbox cannot tell."""
        ...

    def read_default_contacts(self, cursor: str | None) -> Iterator[DeltaPage[Contact]]:
        """Changes of the default Contacts folder, every contact, categorized or not (the
        caller filters: a quiet session then costs one call whatever the number of shared
        contacts)."""
        ...

    def read_events(
        self, cursor: str | None, window_start: datetime, window_end: datetime
    ) -> Iterator[DeltaPage[CalendarEvent]]:
        """Changes of the primary calendar's occurrences inside the window. A cursor taken
        for another window restarts a full pass."""
        ...

    def read_tasks(self, cursor: str | None) -> Iterator[DeltaPage[TodoTask]]:
        """Changes of the tasks of the "Salesforce Tasks" list."""
        ...

    # -- fetch by id ----------------------------------------------------------------------
    def get_contacts(self, ids: Iterable[str]) -> Mapping[str, Contact]:
        """The contacts among `ids` that exist (in any folder), by id; missing ones are left
        out. Batched (Graph: one $batch per 20 ids)."""
        ...

    def get_events(self, ids: Iterable[str]) -> Mapping[str, CalendarEvent]:
        """The events or occurrences among `ids` that exist in the primary calendar, by id,
        wherever they fall in time (outside any window); missing ones are left out."""
        ...

    def get_tasks(self, ids: Iterable[str]) -> Mapping[str, TodoTask]:
        """The tasks among `ids` that exist in the "Salesforce Tasks" list, by id; missing
        ones are left out."""
        ...

    # -- messages ------------------------------------------------------------------------
    def get_message(self, message_id: str, *, with_body: bool = True) -> MailMessage: ...

    def attachments(self, message_id: str) -> Iterator[AttachmentRef]:
        """The message's attachments, described; `ref.open()` streams one's content."""
        ...

    def move_message(self, message_id: str, folder: MessageFolder) -> MailMessage:
        """Move a message; ids are immutable, so the returned message keeps its id."""
        ...

    def set_message_categories(self, message_id: str, categories: Sequence[str]) -> None: ...

    def stamp_message(self, message_id: str, sf_id: str) -> None:
        """Record the Salesforce id the message was saved as, on the message itself."""
        ...

    # -- batched writes ------------------------------------------------------------------
    def create_contacts(self, items: Sequence[Contact]) -> list[WriteResult[Contact]]: ...
    def update_contacts(self, updates: Sequence[Update[Contact]]) -> list[WriteResult[Contact]]: ...
    def delete_contacts(self, deletes: Sequence[Delete]) -> list[WriteResult[Contact]]: ...
    def find_contacts_by_key(self, keys: Iterable[str]) -> Mapping[str, Contact]: ...

    def create_events(self, items: Sequence[CalendarEvent]) -> list[WriteResult[CalendarEvent]]: ...
    def update_events(
        self, updates: Sequence[Update[CalendarEvent]]
    ) -> list[WriteResult[CalendarEvent]]: ...
    def delete_events(self, deletes: Sequence[Delete]) -> list[WriteResult[CalendarEvent]]: ...
    def find_events_by_key(self, keys: Iterable[str]) -> Mapping[str, CalendarEvent]: ...

    def create_tasks(self, items: Sequence[TodoTask]) -> list[WriteResult[TodoTask]]: ...
    def update_tasks(self, updates: Sequence[Update[TodoTask]]) -> list[WriteResult[TodoTask]]: ...
    def delete_tasks(self, deletes: Sequence[Delete]) -> list[WriteResult[TodoTask]]: ...
    def find_tasks_by_key(self, keys: Iterable[str]) -> Mapping[str, TodoTask]: ...

    # -- accounting ----------------------------------------------------------------------
    def call_counts(self) -> Mapping[str, int]:
        """API calls made through this mailbox object, by kind ('delta', 'batch', ...)."""
        ...
