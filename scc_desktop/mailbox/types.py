"""Provider-neutral mailbox items: what the sync engine reads from and writes to a mailbox.

Nothing here knows about Microsoft Graph or Google. Datetimes are timezone-aware UTC; all-day
calendar items carry dates instead (`CalendarEvent.start_date`/`end_date`, end exclusive).
Every item has an `id` (stable across moves: Graph immutable ids, Google ids) and a `version`
(Graph changeKey, Google etag) used for conditional writes and for ignoring our own echoes.
Contacts, events and tasks also carry `modified_at`, the provider's last-modified instant (aware
UTC, None when the provider did not say), which the engine's newest-wins policy compares.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Generic, Protocol, TypeVar


@dataclass(frozen=True)
class Address:
    """A participant: display name (may be empty) and email address (lower-cased by mappers)."""

    email: str
    name: str = ""


class MessageFolder(StrEnum):
    """The message streams the engine reads."""

    INBOX = "inbox"
    SENT = "sentitems"
    SALESFORCE_EMAILS = "salesforce_emails"  # the "Salesforce Emails" folder (Gmail: label)


class AttachmentKind(StrEnum):
    FILE = "file"  # a regular file: uploaded to Salesforce
    INLINE = "inline"  # an image embedded in the body: never uploaded
    REFERENCE = "reference"  # a cloud link (OneDrive, Drive): goes into the description


class BinaryOpener(Protocol):
    """Opens an attachment's content as a stream of byte chunks (the caller iterates it once)."""

    def __call__(self) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class AttachmentRef:
    """An attachment described without its content; `open()` streams the bytes on demand."""

    id: str
    name: str
    content_type: str
    size: int
    kind: AttachmentKind
    is_inline: bool = False
    url: str | None = None  # the link of a reference attachment
    opener: BinaryOpener | None = field(default=None, compare=False, repr=False)

    def open(self) -> Iterator[bytes]:
        """Yield the content in chunks; a reference attachment has no content to stream."""
        if self.opener is None:
            raise ValueError(f"attachment {self.name!r} ({self.kind}) has no content to stream")
        return self.opener()

    def read_all(self) -> bytes:
        return b"".join(self.open())


@dataclass(frozen=True)
class MailMessage:
    id: str
    internet_message_id: str  # the RFC 5322 Message-ID: EmailMessage.MessageIdentifier
    conversation_id: str
    folder: str  # the provider id of the folder that holds the message
    from_: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    body_text: str
    body_html: str
    received: datetime | None
    sent: datetime | None
    is_inbound: bool  # received by the user (False: sent by the user)
    categories: tuple[str, ...] = ()
    has_attachments: bool = False
    is_draft: bool = False
    version: str = ""
    sf_key: str | None = None  # the Salesforce id stamped on the message, if any


@dataclass(frozen=True)
class PostalAddress:
    street: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""

    def is_empty(self) -> bool:
        return not any((self.street, self.city, self.state, self.postal_code, self.country))


@dataclass(frozen=True)
class Contact:
    id: str  # empty for a contact not created yet
    given_name: str = ""
    surname: str = ""
    emails: tuple[Address, ...] = ()
    business_phone: str = ""
    mobile_phone: str = ""
    job_title: str = ""
    company: str = ""
    mailing_address: PostalAddress = field(default_factory=PostalAddress)
    notes: str = ""
    categories: tuple[str, ...] = ()
    version: str = ""
    folder: str = ""  # provider id of the contact folder / group
    sf_id: str | None = None  # the Salesforce id stamped on the contact
    sync_key: str | None = None  # the correlation key stamped when we created it
    modified_at: datetime | None = None  # last modified (Graph lastModifiedDateTime), aware UTC


class AttendeeType(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    RESOURCE = "resource"


class ResponseStatus(StrEnum):
    NONE = "none"
    ORGANIZER = "organizer"
    TENTATIVE = "tentativelyAccepted"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NOT_RESPONDED = "notResponded"


@dataclass(frozen=True)
class Attendee:
    address: Address
    type: AttendeeType = AttendeeType.REQUIRED
    response: ResponseStatus = ResponseStatus.NONE


class ShowAs(StrEnum):
    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"
    WORKING_ELSEWHERE = "workingElsewhere"
    UNKNOWN = "unknown"


class OccurrenceType(StrEnum):
    SINGLE = "singleInstance"
    OCCURRENCE = "occurrence"
    EXCEPTION = "exception"
    SERIES_MASTER = "seriesMaster"


@dataclass(frozen=True)
class CalendarEvent:
    """A calendar item. Timed: `start`/`end` aware UTC. All-day: `start_date`/`end_date`
    (end exclusive), and `start`/`end` hold midnight UTC of those dates for ordering only."""

    id: str
    subject: str
    start: datetime
    end: datetime
    is_all_day: bool = False
    start_date: date | None = None
    end_date: date | None = None
    time_zone: str = "UTC"  # the organizer's original time zone name, for display
    body_text: str = ""
    location: str = ""
    attendees: tuple[Attendee, ...] = ()
    organizer: Address | None = None
    is_organizer: bool = True
    is_private: bool = False  # sensitivity private or confidential
    sensitivity: str = "normal"
    show_as: ShowAs = ShowAs.BUSY
    categories: tuple[str, ...] = ()
    ical_uid: str = ""
    occurrence_type: OccurrenceType = OccurrenceType.SINGLE
    series_master_id: str | None = None
    original_start: datetime | None = None
    is_cancelled: bool = False
    version: str = ""
    sf_id: str | None = None
    sync_key: str | None = None
    modified_at: datetime | None = None  # last modified (Graph lastModifiedDateTime), aware UTC


class TaskStatus(StrEnum):
    NOT_STARTED = "notStarted"
    IN_PROGRESS = "inProgress"
    COMPLETED = "completed"
    WAITING = "waitingOnOthers"
    DEFERRED = "deferred"


class Importance(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


@dataclass(frozen=True)
class TodoTask:
    id: str
    title: str
    body: str = ""
    due: date | None = None
    status: TaskStatus = TaskStatus.NOT_STARTED
    importance: Importance = Importance.NORMAL
    completed: datetime | None = None
    version: str = ""
    sf_id: str | None = None
    sync_key: str | None = None
    modified_at: datetime | None = None  # last modified (To Do lastModifiedDateTime), aware UTC


T = TypeVar("T")


@dataclass(frozen=True)
class Change(Generic[T]):
    """One change of a delta page: `item` is the new state, or None when the item left the
    stream (`removed_reason` 'deleted' or 'changed' = moved out of scope)."""

    id: str
    item: T | None
    removed_reason: str | None = None

    @property
    def removed(self) -> bool:
        return self.item is None


@dataclass(frozen=True)
class DeltaPage(Generic[T]):
    """A page of changes of one stream.

    Apply `changes` (upsert by id, drop removed ids), then save `cursor` for the stream in the
    same transaction: it resumes right after this page. `full_sync` marks a pass that lists the
    whole stream (first run, or the provider forgot our token); when such a pass reaches its
    last page (`done`), items of the stream that the pass never listed are gone. `restarted`
    is set on the first page of a pass that restarted because the stored cursor had expired.
    Duplicates and replays of an item are possible: apply idempotently.
    """

    stream: str
    changes: tuple[Change[T], ...]
    cursor: str
    done: bool
    full_sync: bool = False
    restarted: bool = False


@dataclass(frozen=True)
class WriteResult(Generic[T]):
    """The outcome of one write of a batch, in input order. `item` is the item as written (its
    new id and version) for creates and updates; `error_code` is set on failure, with
    `retryable` telling a transient failure from a permanent one; `conflict` marks a version
    mismatch (the item changed since it was read)."""

    index: int
    ok: bool
    id: str = ""
    item: T | None = None
    error_code: str = ""
    error_message: str = ""
    retryable: bool = False
    conflict: bool = False
    not_found: bool = False


@dataclass(frozen=True)
class Update(Generic[T]):
    """An update of `item` (whose `id` names the target) guarded by `expected_version`
    (empty = unconditional)."""

    item: T
    expected_version: str = ""


@dataclass(frozen=True)
class Delete:
    id: str
    expected_version: str = ""


@dataclass(frozen=True)
class SetupInfo:
    """The ids of what `Mailbox.ensure_setup()` created or found."""

    emails_folder_id: str
    contacts_folder_id: str
    tasks_list_id: str
    category: str
    created: tuple[str, ...] = ()  # names of what this call had to create
