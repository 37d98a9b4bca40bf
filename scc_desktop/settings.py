"""Every user setting declared once, as data: the settings window, the CLI and the policy file
all read these declarations, so a new switch is one entry here and nothing else.

Values are stored as text in the state DB (`settings` table); an administrator's policy file can
lock any key to a value and add a corporate blacklist. A session takes a `SettingsSnapshot` at
its start, so a change applies at the next session without a restart or a re-login.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from scc_desktop.blacklist import Blacklist, parse_blacklist

log = logging.getLogger(__name__)

Value = bool | int | str


class Kind(Enum):
    BOOL = "bool"
    INT = "int"
    CHOICE = "choice"
    TEXT = "text"
    BLACKLIST = "blacklist"


class Group(Enum):
    """Sections of the settings window, in display order."""

    EMAIL = "Email Sync Options"
    CALENDAR = "Calendar Sync Options"
    OBJECTS = "What to Sync"
    ADJUSTMENTS = "Other Sync Adjustments"
    SCHEDULE = "Schedule"


@dataclass(frozen=True)
class Setting:
    key: str
    kind: Kind
    default: Value
    label: str
    group: Group
    help: str
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for CHOICE
    minimum: int | None = None
    maximum: int | None = None
    unit: str = ""
    switch: bool = False  # shown as one of the dashboard's switches
    pending: str = ""  # non-empty: declared but not working yet; shown disabled, refused by `set`
    validate: Callable[[str], str | None] | None = field(default=None, compare=False)

    def choice_values(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.choices)


DIRECTIONS = (
    ("two_way", "Two-way"),
    ("sf_to_mailbox", "Salesforce → mailbox"),
    ("mailbox_to_sf", "Mailbox → Salesforce"),
    ("off", "Off"),
)
CONFLICT_POLICIES = (
    ("newest_wins", "Newest change wins"),
    ("salesforce_wins", "Salesforce wins"),
    ("mailbox_wins", "Mailbox wins"),
)


def _soql_filter_check(text: str) -> str | None:
    if ";" in text:
        return "a filter is one SOQL condition; ';' is not allowed"
    return None


def _direction(key: str, what: str, items: str) -> Setting:
    return Setting(
        key,
        Kind.CHOICE,
        "two_way",
        f"{what}: direction",
        Group.OBJECTS,
        f"Which way {items} flow between your mailbox and Salesforce.",
        DIRECTIONS,
    )


def _conflict(key: str, what: str) -> Setting:
    return Setting(
        key,
        Kind.CHOICE,
        "newest_wins",
        f"{what}: when both sides changed",
        Group.OBJECTS,
        "Who wins when the same field changed on both sides; the other version is kept in "
        "Sync Issues, never dropped.",
        CONFLICT_POLICIES,
    )


SETTINGS: tuple[Setting, ...] = (
    # --- Email Sync Options card ---------------------------------------------------------------
    Setting(
        "email_autoshare",
        Kind.BOOL,
        False,
        "Enable Auto-Sharing",
        Group.EMAIL,
        "Save incoming and outgoing emails whose participants are Contacts or Leads in "
        "Salesforce, at the next session. Emails with no match are not shared.",
        switch=True,
    ),
    Setting(
        "email_thread_autosave",
        Kind.BOOL,
        False,
        "Auto-Save All Emails In Threads",
        Group.EMAIL,
        'Once you save an email with "auto-save all next emails in this '
        'thread", later emails of that conversation are saved too.',
        switch=True,
    ),
    Setting(
        "email_link_opportunities",
        Kind.BOOL,
        False,
        "Link to Opportunities",
        Group.EMAIL,
        "Automatically shared emails are linked to your most recent opportunity whose "
        "account has a contact among From, To or CC; else to that contact's account.",
        switch=True,
    ),
    Setting(
        "blacklist",
        Kind.BLACKLIST,
        "",
        "Blacklisted Domains",
        Group.EMAIL,
        "Addresses and domains never shared automatically, separated by commas. Exact "
        "matches only: wildcards are not supported (a domain covers all its addresses).",
    ),
    Setting(
        "email_history_days",
        Kind.INT,
        6,
        "On first enabling, also share the last",
        Group.EMAIL,
        "How many days of past email auto-sharing takes in when first enabled.",
        minimum=0,
        maximum=30,
        unit="days",
    ),
    Setting(
        "save_emails_as",
        Kind.CHOICE,
        "auto",
        "Save emails as",
        Group.EMAIL,
        "Automatic uses Email Messages when the org has Enhanced Email, Tasks otherwise.",
        (("auto", "Automatic"), ("task", "Completed Task"), ("email_message", "Email Message")),
    ),
    Setting(
        "attachments_as",
        Kind.CHOICE,
        "files",
        "Save attachments as",
        Group.EMAIL,
        "Salesforce Files (recommended) or classic Attachments.",
        (("files", "Salesforce Files"), ("attachment", "Attachments")),
    ),
    Setting(
        "attachment_max_mb",
        Kind.INT,
        25,
        "Skip attachments larger than",
        Group.EMAIL,
        "Larger files are not uploaded; the email notes it and Sync Issues lists it.",
        minimum=1,
        maximum=2000,
        unit="MB",
    ),
    # --- Calendar ----------------------------------------------------------------------------
    Setting(
        "meetings_autoshare",
        Kind.BOOL,
        False,
        "Enable Meetings Auto-Sharing",
        Group.CALENDAR,
        "Save meetings (items with attendees) to your Salesforce calendar "
        "and to the calendars of attendees found in Salesforce.",
        switch=True,
    ),
    Setting(
        "appointments_autoshare",
        Kind.BOOL,
        False,
        "Enable Appointments Auto-Sharing",
        Group.CALENDAR,
        "Save appointments (items without attendees) to your Salesforce calendar.",
        switch=True,
    ),
    Setting(
        "calendar_days_back",
        Kind.INT,
        14,
        "Calendar window: days back",
        Group.CALENDAR,
        "How far back calendar items are kept in sync.",
        minimum=0,
        maximum=365,
        unit="days",
    ),
    Setting(
        "calendar_days_ahead",
        Kind.INT,
        60,
        "Calendar window: days ahead",
        Group.CALENDAR,
        "How far ahead calendar items are kept in sync.",
        minimum=1,
        maximum=730,
        unit="days",
    ),
    Setting(
        "sync_private_items",
        Kind.BOOL,
        False,
        "Sync private items",
        Group.CALENDAR,
        "Private calendar items are skipped unless this is on; then they are saved as "
        "private in Salesforce.",
    ),
    # --- What to sync -------------------------------------------------------------------------
    _direction("contacts_direction", "Contacts", "contacts"),
    _conflict("contacts_conflict", "Contacts"),
    Setting(
        "contacts_scope",
        Kind.CHOICE,
        "mine",
        "Contacts: which ones",
        Group.OBJECTS,
        "Which Salesforce Contacts are mirrored into your mailbox.",
        (("mine", "My contacts"), ("all", "All contacts"), ("filter", "A SOQL filter")),
    ),
    Setting(
        "contacts_filter",
        Kind.TEXT,
        "",
        "Contacts: SOQL filter",
        Group.OBJECTS,
        "A SOQL condition (used when 'which ones' is 'A SOQL filter'), for example "
        "MailingCountry = 'Germany'.",
        validate=_soql_filter_check,
    ),
    Setting(
        "contacts_propagate_deletes",
        Kind.BOOL,
        False,
        "Contacts: deleting in the mailbox deletes in Salesforce",
        Group.OBJECTS,
        "Off: a contact deleted in the mailbox is only unlinked; Salesforce keeps it.",
    ),
    _direction("calendar_direction", "Calendar", "calendar items"),
    _conflict("calendar_conflict", "Calendar"),
    _direction("tasks_direction", "Tasks", "tasks"),
    _conflict("tasks_conflict", "Tasks"),
    Setting(
        "tasks_propagate_deletes",
        Kind.BOOL,
        False,
        "Tasks: deleting in the mailbox deletes in Salesforce",
        Group.OBJECTS,
        "Off: a task deleted in the mailbox is only unlinked; Salesforce keeps it.",
    ),
    # --- Other sync adjustments ---------------------------------------------------------------
    Setting(
        "calendar_items_as_tasks",
        Kind.BOOL,
        False,
        "Save calendar items as Tasks",
        Group.ADJUSTMENTS,
        "Save shared calendar items as Salesforce Tasks instead of Events (dated on the "
        "item's day; time and place in the Task's comments). Applies to new items only: "
        "items already saved stay Events (or Tasks) and keep syncing, so switching this "
        "never duplicates nor deletes anything. Private items are always saved as Events.",
    ),
    Setting(
        "show_sf_tasks_in_calendar",
        Kind.BOOL,
        False,
        "Show Salesforce Tasks in the calendar",
        Group.ADJUSTMENTS,
        "Your open Salesforce Tasks with a due date in the calendar window appear as "
        'all-day calendar items in the "Salesforce Tasks" category, kept up to date from '
        "Salesforce. They are read-only: edits made in the mailbox are put back. Turning "
        "this off removes them from the calendar.",
    ),
    # --- Schedule ----------------------------------------------------------------------------
    Setting(
        "sync_interval_minutes",
        Kind.INT,
        10,
        "Sync every",
        Group.SCHEDULE,
        "Minutes between sessions. Quiet sessions stretch this up to 60 minutes; any change "
        "snaps it back.",
        minimum=1,
        maximum=240,
        unit="minutes",
    ),
    Setting(
        "start_at_login",
        Kind.BOOL,
        False,
        "Start at login",
        Group.SCHEDULE,
        "Start scc-desktop in the tray when you sign in to your computer.",
    ),
)

SETTINGS_BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}

_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}


class SettingsError(Exception):
    """A value the user gave was refused; the message says why, for the user."""


class UnknownSetting(SettingsError):
    pass


class InvalidValue(SettingsError):
    pass


class SettingLocked(SettingsError):
    pass


class SettingUnavailable(SettingsError):
    pass


def setting(key: str) -> Setting:
    try:
        return SETTINGS_BY_KEY[key]
    except KeyError:
        raise UnknownSetting(
            f"unknown setting {key!r}; `scc-desktop settings list` shows them all"
        ) from None


def parse_value(decl: Setting, raw: Value) -> Value:
    """Check and convert a value from text (CLI, DB) or from a widget; raise InvalidValue."""
    if decl.kind is Kind.BOOL:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InvalidValue(f"{decl.key} takes true/false, on/off, yes/no or 1/0, not {raw!r}")
    if decl.kind is Kind.INT:
        try:
            number = int(str(raw).strip()) if not isinstance(raw, int) else raw
        except ValueError:
            raise InvalidValue(f"{decl.key} takes a whole number, not {raw!r}") from None
        if isinstance(number, bool):
            raise InvalidValue(f"{decl.key} takes a whole number, not {raw!r}")
        if decl.minimum is not None and number < decl.minimum:
            raise InvalidValue(f"{decl.key} must be at least {decl.minimum}")
        if decl.maximum is not None and number > decl.maximum:
            raise InvalidValue(f"{decl.key} must be at most {decl.maximum}")
        return number
    text = str(raw)
    if decl.kind is Kind.CHOICE:
        text = text.strip()
        if text not in decl.choice_values():
            raise InvalidValue(
                f"{decl.key} takes one of {', '.join(decl.choice_values())}, not {raw!r}"
            )
        return text
    if decl.kind is Kind.BLACKLIST:
        parsed = parse_blacklist(text)
        if not parsed.ok:
            raise InvalidValue(f"{decl.label}: {parsed.error_message()}")
        return parsed.canonical()
    text = text.strip()
    if decl.validate is not None:
        problem = decl.validate(text)
        if problem:
            raise InvalidValue(f"{decl.key}: {problem}")
    return text


def format_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- administrator policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """What an administrator enforces: locked values and a corporate blacklist."""

    locked: Mapping[str, Value] = field(default_factory=dict)
    corporate_blacklist: tuple[str, ...] = ()
    internal_domains: tuple[str, ...] = ()
    reason: str = "Set by your administrator."
    problems: tuple[str, ...] = ()
    source: Path | None = None

    @classmethod
    def load(cls, path: Path) -> Policy:
        """Read a policy file: missing means no policy; a broken entry is reported, not fatal."""
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            log.error("policy file %s ignored: %s", path, exc)
            return cls(problems=(f"{path}: {exc}",), source=path)
        return cls.from_mapping(data, source=path)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: Path | None = None) -> Policy:
        problems: list[str] = []
        locked: dict[str, Value] = {}
        for key, raw in dict(data.get("locked", {})).items():
            try:
                decl = setting(key)
                locked[key] = parse_value(
                    decl, raw if not isinstance(raw, list) else ", ".join(raw)
                )
            except SettingsError as exc:
                problems.append(f"locked.{key}: {exc}")
        bl_section = dict(data.get("blacklist", {}))
        corporate_raw = bl_section.get("corporate", [])
        corporate_text = (
            ", ".join(corporate_raw) if isinstance(corporate_raw, list) else str(corporate_raw)
        )
        parsed = parse_blacklist(corporate_text)
        problems.extend(f"blacklist.corporate: {error}" for error in parsed.errors)
        internal_raw = bl_section.get("internal_domains", [])
        internal_text = (
            ", ".join(internal_raw) if isinstance(internal_raw, list) else str(internal_raw)
        )
        internal = parse_blacklist(internal_text)
        problems.extend(f"blacklist.internal_domains: {error}" for error in internal.errors)
        for problem in problems:
            log.error("policy problem: %s", problem)
        reason = str(data.get("reason", cls.reason))
        return cls(locked, parsed.entries, internal.entries, reason, tuple(problems), source)


# --- the settings service ---------------------------------------------------------------


class SettingsStorage(Protocol):
    """Raw text storage of values (the state DB's settings table)."""

    def load_all(self) -> dict[str, str]: ...
    def save(self, key: str, text: str) -> None: ...


@dataclass(frozen=True)
class SettingsSnapshot:
    """The effective values at one moment: what one session runs with."""

    values: Mapping[str, Value]
    corporate_blacklist: tuple[str, ...] = ()
    internal_domains: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Value:
        return self.values[key]

    def flag(self, key: str) -> bool:
        return bool(self.values[key])

    def number(self, key: str) -> int:
        value = self.values[key]
        assert isinstance(value, int)
        return value

    def text(self, key: str) -> str:
        return str(self.values[key])

    def blacklist(self, extra_internal: tuple[str, ...] = ()) -> Blacklist:
        """The user's box merged with the corporate list and the internal domains."""
        user = parse_blacklist(self.text("blacklist")).entries
        return Blacklist.from_entries(
            user, self.corporate_blacklist, self.internal_domains, extra_internal
        )


class Settings:
    """Effective settings: stored values over defaults, under the administrator's locks."""

    def __init__(self, storage: SettingsStorage, policy: Policy | None = None) -> None:
        self._storage = storage
        self.policy = policy or Policy()
        self._values: dict[str, Value] = {}
        self.reload()

    def reload(self) -> None:
        stored = self._storage.load_all()
        values: dict[str, Value] = {}
        for decl in SETTINGS:
            values[decl.key] = decl.default
            if decl.key in stored:
                try:
                    values[decl.key] = parse_value(decl, stored[decl.key])
                except SettingsError as exc:
                    log.warning("stored value for %s ignored: %s", decl.key, exc)
        self._values = values

    def is_locked(self, key: str) -> bool:
        return key in self.policy.locked

    def get(self, key: str) -> Value:
        setting(key)
        if key in self.policy.locked:
            return self.policy.locked[key]
        return self._values[key]

    def set(self, key: str, raw: Value) -> Value:
        """Validate and persist; returns the canonical value. Raises SettingsError."""
        decl = setting(key)
        if key in self.policy.locked:
            raise SettingLocked(
                f"{decl.label} is locked by your administrator: {self.policy.reason}"
            )
        if decl.pending:
            raise SettingUnavailable(f"{decl.label}: {decl.pending}")
        value = parse_value(decl, raw)
        self._storage.save(key, format_value(value))
        self._values[key] = value
        return value

    def items(self) -> Iterator[tuple[Setting, Value]]:
        for decl in SETTINGS:
            yield decl, self.get(decl.key)

    def snapshot(self) -> SettingsSnapshot:
        return SettingsSnapshot(
            {decl.key: self.get(decl.key) for decl in SETTINGS},
            self.policy.corporate_blacklist,
            self.policy.internal_domains,
        )
