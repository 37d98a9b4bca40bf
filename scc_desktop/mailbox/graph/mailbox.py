"""GraphMailbox: the Mailbox protocol on Microsoft Graph v1.0."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import requests

from scc_desktop.mailbox.graph import mapping
from scc_desktop.mailbox.graph.batch import BatchOp, BatchResult, run_batch
from scc_desktop.mailbox.graph.delta import read_delta
from scc_desktop.mailbox.graph.http import GraphError, GraphHttp, TokenSource
from scc_desktop.mailbox.protocol import (
    SALESFORCE_CATEGORY,
    SALESFORCE_CONTACTS_FOLDER,
    SALESFORCE_EMAILS_FOLDER,
    SALESFORCE_TASKS_LIST,
    MailboxError,
)
from scc_desktop.mailbox.types import (
    Address,
    AttachmentKind,
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

log = logging.getLogger(__name__)

T = TypeVar("T")

UTC_PREFER = 'outlook.timezone="UTC"'
CATEGORY_COLOR = "preset7"  # blue
ATTACHMENT_FIELDS = "id,name,contentType,size,isInline,lastModifiedDateTime"
RETRYABLE_ITEM_STATUSES = frozenset({429, 500, 502, 503, 504})


def _query(params: Mapping[str, str]) -> str:
    return urlencode(params, quote_via=quote, safe="$,()='/:")


def whole_days(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The window widened to whole UTC days, so that a cursor stays valid all day long (a
    calendarView delta token is bound to its window; another window means a full pass)."""
    first = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last_utc = end.astimezone(UTC)
    last = last_utc.replace(hour=0, minute=0, second=0, microsecond=0)
    if last < last_utc:
        last += timedelta(days=1)
    return first, max(last, first + timedelta(days=1))


def _result_from(
    index: int, result: BatchResult, parse: Callable[[Mapping[str, Any]], T] | None
) -> WriteResult[T]:
    if result.ok:
        item = (
            parse(result.body) if parse is not None and isinstance(result.body, Mapping) else None
        )
        item_id = str(result.body.get("id", "")) if isinstance(result.body, Mapping) else ""
        return WriteResult(index=index, ok=True, id=item_id, item=item)
    return WriteResult(
        index=index,
        ok=False,
        error_code=result.error_code or str(result.status),
        error_message=result.error_message,
        retryable=result.status in RETRYABLE_ITEM_STATUSES,
        conflict=result.status in (409, 412) and "exist" not in result.error_code.lower(),
        not_found=result.status == 404,
    )


MAX_PAGE_SIZE = 1000
"""Delta pages are asked for at Graph's largest page (`Prefer: odata.maxpagesize`; Outlook items
page at up to 1,000): the first session after a large initial sync reads its own writes back in
a tenth of the calls a page of 100 costs. Graph may still send smaller pages."""


class GraphMailbox:
    """A Microsoft 365 mailbox through Graph. One instance per session is enough; it is
    thread-safe (at most 4 requests in flight)."""

    provider = "microsoft"

    def __init__(self, http: GraphHttp, *, page_size: int = MAX_PAGE_SIZE, owner: str = "") -> None:
        self.http = http
        self.page_size = page_size
        self._owner = owner.lower()
        self._setup: SetupInfo | None = None
        self._default_contacts = ""  # the default Contacts folder: our folder's parent
        self._categories: set[str] = set()  # master categories known to exist (lower-cased)
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls,
        graph_url: str,
        tokens: TokenSource,
        *,
        ca_file: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        page_size: int = MAX_PAGE_SIZE,
        owner: str = "",
    ) -> GraphMailbox:
        kwargs: dict[str, Any] = {"session": session, "ca_file": ca_file}
        if sleep is not None:
            kwargs["sleep"] = sleep
        return cls(GraphHttp(graph_url, tokens, **kwargs), page_size=page_size, owner=owner)

    # -- identity and setup --------------------------------------------------------------------
    def me(self) -> Address:
        data = self.http.get_json("/me", params={"$select": "mail,userPrincipalName,displayName"})
        email = str(data.get("mail") or data.get("userPrincipalName") or "").lower()
        self._owner = email
        return Address(email=email, name=str(data.get("displayName") or ""))

    def owner(self) -> str:
        if not self._owner:
            self.me()
        return self._owner

    def ensure_setup(self) -> SetupInfo:
        """One $batch call finds all four; missing ones are created (a refused duplicate means
        another client created it in between: it is found again)."""
        with self._lock:
            if self._setup is not None:
                return self._setup
            lists = run_batch(
                self.http,
                [
                    BatchOp("GET", "/me/mailFolders?$top=250&$select=id,displayName"),
                    BatchOp(
                        "GET", "/me/contactFolders?$top=250&$select=id,displayName,parentFolderId"
                    ),
                    BatchOp("GET", "/me/todo/lists?$top=250"),
                    BatchOp("GET", "/me/outlook/masterCategories"),
                ],
            )
            created: list[str] = []
            found: list[str | None] = []
            paths = ("/me/mailFolders", "/me/contactFolders", "/me/todo/lists")
            names = (SALESFORCE_EMAILS_FOLDER, SALESFORCE_CONTACTS_FOLDER, SALESFORCE_TASKS_LIST)
            for result, path, name in zip(lists[:3], paths, names, strict=True):
                item_id = self._find_named(result, path, name)
                if item_id is None:
                    item_id = self._create_named(path, name)
                    created.append(name)
                found.append(item_id)
            if not self._has_category(lists[3]):
                try:
                    self.http.send_json(
                        "POST",
                        "/me/outlook/masterCategories",
                        {"displayName": SALESFORCE_CATEGORY, "color": CATEGORY_COLOR},
                    )
                    created.append(SALESFORCE_CATEGORY)
                except GraphError as exc:
                    if exc.status != 409:
                        raise
            self._default_contacts = self._parent_folder(lists[1], str(found[1]))
            self._setup = SetupInfo(
                emails_folder_id=str(found[0]),
                contacts_folder_id=str(found[1]),
                tasks_list_id=str(found[2]),
                category=SALESFORCE_CATEGORY,
                created=tuple(created),
            )
            if created:
                log.info("mailbox setup created: %s", ", ".join(created))
            return self._setup

    def _parent_folder(self, listing: BatchResult, folder_id: str) -> str:
        """The parent of our contacts folder (the default Contacts folder), from the listing or,
        for a folder just created, from the folder itself; "" when Graph does not say."""
        body = listing.body if listing.ok and isinstance(listing.body, Mapping) else {}
        for item in body.get("value", []):
            if str(item.get("id")) == folder_id and item.get("parentFolderId"):
                return str(item["parentFolderId"])
        try:
            data = self.http.get_json(
                f"/me/contactFolders/{quote(folder_id)}", params={"$select": "parentFolderId"}
            )
        except GraphError as exc:
            log.info("the default contacts folder is unknown (%s)", exc.code)
            return ""
        return str(data.get("parentFolderId") or "")

    def default_contacts_folder(self) -> str:
        """The id of the default Contacts folder ("" when unknown)."""
        self.ensure_setup()
        return self._default_contacts

    def _find_named(self, result: BatchResult, path: str, name: str) -> str | None:
        if not result.ok:
            raise MailboxError(
                f"listing {path} failed: {result.status} {result.error_code}",
                status=result.status,
                code=result.error_code,
                retryable=result.status in RETRYABLE_ITEM_STATUSES,
            )
        body = result.body if isinstance(result.body, Mapping) else {}
        items: Iterable[Mapping[str, Any]] = body.get("value", [])
        next_link = body.get("@odata.nextLink")
        if next_link:  # more than a page of folders: read them all
            items = [*items, *self._rest(str(next_link))]
        for item in items:
            if str(item.get("displayName", "")).strip().lower() == name.lower():
                return str(item["id"])
        return None

    def _rest(self, next_link: str) -> Iterator[Mapping[str, Any]]:
        data = self.http.get_json(next_link)
        while True:
            yield from data.get("value", [])
            link = data.get("@odata.nextLink")
            if not link:
                return
            data = self.http.get_json(link)

    def _create_named(self, path: str, name: str) -> str:
        try:
            data = self.http.send_json("POST", path, {"displayName": name})
            return str(data["id"])
        except GraphError as exc:
            if exc.status not in (400, 409):
                raise
            for item in self.http.iter_pages(path):
                if str(item.get("displayName", "")).strip().lower() == name.lower():
                    return str(item["id"])
            raise

    def ensure_category(self, name: str, color: str = "preset4") -> bool:
        """Create the master category `name` (with its colour) unless the mailbox has it, as
        `ensure_setup` does for "Salesforce"; once per client. True when it was created."""
        with self._lock:
            if name.lower() in self._categories:
                return False
            listed = self.http.get_json("/me/outlook/masterCategories")
            names = {str(c.get("displayName", "")).lower() for c in listed.get("value", [])}
            created = False
            if name.lower() not in names:
                try:
                    body = {"displayName": name, "color": color}
                    self.http.send_json("POST", "/me/outlook/masterCategories", body)
                    created = True
                except GraphError as exc:
                    if exc.status != 409:  # another client created it in between
                        raise
            self._categories.add(name.lower())
            return created

    @staticmethod
    def _has_category(result: BatchResult) -> bool:
        if not result.ok or not isinstance(result.body, Mapping):
            return False
        return any(
            str(c.get("displayName", "")).lower() == SALESFORCE_CATEGORY.lower()
            for c in result.body.get("value", [])
        )

    def _folder_id(self, folder: MessageFolder) -> str:
        if folder is MessageFolder.SALESFORCE_EMAILS:
            return self.ensure_setup().emails_folder_id
        return folder.value

    # -- delta readers -------------------------------------------------------------------------
    def _page_prefer(self, *extra: str) -> tuple[str, ...]:
        return (f"odata.maxpagesize={self.page_size}", *extra)

    def read_messages(
        self,
        folder: MessageFolder,
        cursor: str | None,
        *,
        with_body: bool = True,
        received_since: datetime | None = None,
    ) -> Iterator[DeltaPage[MailMessage]]:
        folder_id = self._folder_id(folder)
        owner = self.owner()
        select = mapping.MESSAGE_FIELDS + (",body" if with_body else "")
        params = {"$select": select, "$expand": mapping.EXPAND_STAMPS}
        if received_since is not None:
            params["$filter"] = (
                f"receivedDateTime ge {received_since.strftime('%Y-%m-%dT%H:%M:%SZ')}"
            )
        url = self.http.url(f"/me/mailFolders/{quote(folder_id)}/messages/delta?{_query(params)}")
        return read_delta(
            self.http,
            stream=f"graph:messages:{folder.value}",
            scope=f"{folder_id}|body={int(with_body)}",
            initial_url=url,
            cursor=cursor,
            parse=lambda raw: mapping.message_from_graph(raw, owner, folder_id),
            prefer=self._page_prefer(),
        )

    def read_contacts(self, cursor: str | None) -> Iterator[DeltaPage[Contact]]:
        folder_id = self.ensure_setup().contacts_folder_id
        return self._contacts_delta(folder_id, "graph:contacts", cursor)

    def read_default_contacts(self, cursor: str | None) -> Iterator[DeltaPage[Contact]]:
        """Changes of the default Contacts folder, every contact (a delta cannot filter on
        categories: the caller keeps those categorized "Salesforce"). Raises MailboxError when
        the folder is unknown (`default_contacts_folder()` is "")."""
        folder_id = self.default_contacts_folder()
        if not folder_id:
            raise MailboxError("the default contacts folder is unknown")
        return self._contacts_delta(folder_id, "graph:contacts:default", cursor)

    def _contacts_delta(
        self, folder_id: str, stream: str, cursor: str | None
    ) -> Iterator[DeltaPage[Contact]]:
        params = {"$expand": mapping.EXPAND_STAMPS}
        url = self.http.url(
            f"/me/contactFolders/{quote(folder_id)}/contacts/delta?{_query(params)}"
        )
        return read_delta(
            self.http,
            stream=stream,
            scope=folder_id,
            initial_url=url,
            cursor=cursor,
            parse=mapping.contact_from_graph,
            prefer=self._page_prefer(),
        )

    def list_categorized_contacts(self, category: str = SALESFORCE_CATEGORY) -> Iterator[Contact]:
        """Contacts of the default Contacts folder that carry `category` (contacts delta cannot
        filter, so this is a filtered list: one call per session while fewer than a page)."""
        params = {
            "$filter": f"categories/any(c:c eq '{mapping.quote_odata(category)}')",
            "$expand": mapping.EXPAND_STAMPS,
            "$top": str(self.page_size),
        }
        for raw in self.http.iter_pages("/me/contacts", params=params):
            yield mapping.contact_from_graph(raw)

    def read_events(
        self, cursor: str | None, window_start: datetime, window_end: datetime
    ) -> Iterator[DeltaPage[CalendarEvent]]:
        first, last = whole_days(window_start, window_end)
        start = first.strftime("%Y-%m-%dT%H:%M:%SZ")
        end = last.strftime("%Y-%m-%dT%H:%M:%SZ")
        url = self.http.url(
            f"/me/calendarView/delta?{_query({'startDateTime': start, 'endDateTime': end})}"
        )
        return read_delta(
            self.http,
            stream="graph:events",
            scope=f"{start}|{end}",
            initial_url=url,
            cursor=cursor,
            parse=mapping.event_from_graph,
            prefer=self._page_prefer(UTC_PREFER),
        )

    def read_tasks(self, cursor: str | None) -> Iterator[DeltaPage[TodoTask]]:
        list_id = self.ensure_setup().tasks_list_id
        url = self.http.url(f"/me/todo/lists/{quote(list_id)}/tasks/delta")
        return read_delta(
            self.http,
            stream="graph:tasks",
            scope=list_id,
            initial_url=url,
            cursor=cursor,
            parse=mapping.task_from_graph,
            prefer=self._page_prefer(),
        )

    # -- fetch by id ---------------------------------------------------------------------------
    def _get_by_ids(
        self,
        path: str,
        ids: Iterable[str],
        parse: Callable[[Mapping[str, Any]], T],
        *,
        expand: str,
        prefer: Sequence[str] = (),
    ) -> dict[str, T]:
        """GET `{path}/{id}` for each id through $batch (20 per call); a 404 means the item is
        gone (left out); any other failure raises."""
        wanted = list(dict.fromkeys(i for i in ids if i))
        if not wanted:
            return {}
        suffix = "?" + _query({"$expand": expand})
        ops = [BatchOp("GET", f"{path}/{quote(item_id, safe='')}{suffix}") for item_id in wanted]
        found: dict[str, T] = {}
        for item_id, result in zip(wanted, run_batch(self.http, ops, prefer=prefer), strict=True):
            if result.status == 404:
                continue
            if not result.ok or not isinstance(result.body, Mapping):
                raise MailboxError(
                    f"fetching {path}/{item_id} failed: {result.status} {result.error_code}",
                    status=result.status,
                    code=result.error_code,
                    retryable=result.status in RETRYABLE_ITEM_STATUSES,
                )
            found[item_id] = parse(result.body)
        return found

    def get_contacts(self, ids: Iterable[str]) -> Mapping[str, Contact]:
        return self._get_by_ids(
            "/me/contacts", ids, mapping.contact_from_graph, expand=mapping.EXPAND_STAMPS
        )

    def get_events(self, ids: Iterable[str]) -> Mapping[str, CalendarEvent]:
        """From the primary calendar (what calendarView/delta reads): an event moved to
        Deleted Items is not found there, so it reads as deleted."""
        return self._get_by_ids(
            "/me/calendar/events",
            ids,
            mapping.event_from_graph,
            expand=mapping.EXPAND_STAMPS,
            prefer=(UTC_PREFER,),
        )

    def get_tasks(self, ids: Iterable[str]) -> Mapping[str, TodoTask]:
        return self._get_by_ids(
            self._tasks_path(),
            ids,
            mapping.task_from_graph,
            expand=f"extensions($filter=id eq '{mapping.TASK_EXTENSION}')",
        )

    # -- messages ------------------------------------------------------------------------------
    def get_message(self, message_id: str, *, with_body: bool = True) -> MailMessage:
        select = mapping.MESSAGE_FIELDS + (",body" if with_body else "")
        raw = self.http.get_json(
            f"/me/messages/{quote(message_id)}",
            params={"$select": select, "$expand": mapping.EXPAND_STAMPS},
        )
        return mapping.message_from_graph(raw, self.owner())

    def attachments(self, message_id: str) -> Iterator[AttachmentRef]:
        """Describe the attachments without their bytes; each `open()` streams `/$value`."""
        base = f"/me/messages/{quote(message_id)}/attachments"
        for raw in self.http.iter_pages(
            base, kind="attachment", params={"$select": ATTACHMENT_FIELDS}
        ):
            yield self._attachment_ref(base, raw)

    def _attachment_ref(self, base: str, raw: Mapping[str, Any]) -> AttachmentRef:
        odata_type = str(raw.get("@odata.type", "#microsoft.graph.fileAttachment")).lower()
        att_id = str(raw.get("id", ""))
        is_inline = bool(raw.get("isInline"))
        if odata_type.endswith("referenceattachment"):
            # v1.0 describes a cloud link without its URL (sourceUrl is beta-only): take it when
            # the service gives it, else the link is only in the message body.
            return AttachmentRef(
                id=att_id,
                name=str(raw.get("name", "")),
                content_type=str(raw.get("contentType") or ""),
                size=int(raw.get("size") or 0),
                kind=AttachmentKind.REFERENCE,
                is_inline=False,
                url=str(raw.get("sourceUrl") or "") or None,
            )
        if odata_type.endswith("itemattachment"):
            kind = AttachmentKind.FILE  # an attached message/event: its MIME via /$value
        else:
            kind = AttachmentKind.INLINE if is_inline else AttachmentKind.FILE
        value_path = f"{base}/{quote(att_id)}/$value"

        def opener() -> Iterator[bytes]:
            return self.http.stream_bytes(value_path)

        return AttachmentRef(
            id=att_id,
            name=str(raw.get("name", "")),
            content_type=str(raw.get("contentType") or "application/octet-stream"),
            size=int(raw.get("size") or 0),
            kind=kind,
            is_inline=is_inline,
            opener=opener,
        )

    def move_message(self, message_id: str, folder: MessageFolder) -> MailMessage:
        raw = self.http.send_json(
            "POST",
            f"/me/messages/{quote(message_id)}/move",
            {"destinationId": self._folder_id(folder)},
        )
        return mapping.message_from_graph(raw, self.owner())

    def set_message_categories(self, message_id: str, categories: Sequence[str]) -> None:
        self.http.send_json(
            "PATCH", f"/me/messages/{quote(message_id)}", {"categories": list(categories)}
        )

    def stamp_message(self, message_id: str, sf_id: str) -> None:
        self.http.send_json(
            "PATCH",
            f"/me/messages/{quote(message_id)}",
            {"singleValueExtendedProperties": mapping.stamp_json(None, sf_id)},
        )

    # -- batched writes (generic) --------------------------------------------------------------
    def _write(
        self,
        ops: Sequence[BatchOp],
        parse: Callable[[Mapping[str, Any]], T] | None,
        prefer: Sequence[str] = (),
    ) -> list[WriteResult[T]]:
        if not ops:
            return []
        results = run_batch(self.http, ops, prefer=prefer)
        return [_result_from(i, r, parse) for i, r in enumerate(results)]

    @staticmethod
    def _if_match(version: str) -> dict[str, str]:
        tag = mapping.etag_for(version)
        return {"If-Match": tag} if tag else {}

    @staticmethod
    def _require_key(items: Sequence[Any]) -> None:
        for item in items:
            if not item.sync_key:
                raise ValueError("a created item needs a sync_key (its correlation key)")

    # -- contacts ------------------------------------------------------------------------------
    def create_contacts(self, items: Sequence[Contact]) -> list[WriteResult[Contact]]:
        self._require_key(items)
        folder = quote(self.ensure_setup().contacts_folder_id)
        ops = [
            BatchOp("POST", f"/me/contactFolders/{folder}/contacts", mapping.contact_to_graph(c))
            for c in items
        ]
        return self._write(ops, mapping.contact_from_graph)

    def update_contacts(self, updates: Sequence[Update[Contact]]) -> list[WriteResult[Contact]]:
        ops = [
            BatchOp(
                "PATCH",
                f"/me/contacts/{quote(u.item.id)}",
                mapping.contact_to_graph(u.item),
                self._if_match(u.expected_version),
            )
            for u in updates
        ]
        return self._write(ops, mapping.contact_from_graph)

    def delete_contacts(self, deletes: Sequence[Delete]) -> list[WriteResult[Contact]]:
        ops = [
            BatchOp(
                "DELETE", f"/me/contacts/{quote(d.id)}", None, self._if_match(d.expected_version)
            )
            for d in deletes
        ]
        return self._deleted(ops, deletes)

    def _deleted(self, ops: Sequence[BatchOp], deletes: Sequence[Delete]) -> list[WriteResult[T]]:
        results: list[WriteResult[T]] = self._write(ops, None)
        return [
            WriteResult(index=r.index, ok=True, id=d.id)
            if r.not_found  # already gone
            else WriteResult(
                index=r.index,
                ok=r.ok,
                id=d.id,
                error_code=r.error_code,
                error_message=r.error_message,
                retryable=r.retryable,
                conflict=r.conflict,
            )
            for r, d in zip(results, deletes, strict=True)
        ]

    def find_contacts_by_key(self, keys: Iterable[str]) -> Mapping[str, Contact]:
        folder = quote(self.ensure_setup().contacts_folder_id)
        return self._find_by_key(
            f"/me/contactFolders/{folder}/contacts", keys, mapping.contact_from_graph
        )

    def _find_by_key(
        self, path: str, keys: Iterable[str], parse: Callable[[Mapping[str, Any]], T]
    ) -> dict[str, T]:
        wanted = sorted(set(keys))
        ops = [
            BatchOp(
                "GET",
                f"{path}?"
                + _query(
                    {
                        "$filter": mapping.key_filter(mapping.SYNC_KEY_PROP, [key]),
                        "$expand": mapping.EXPAND_STAMPS,
                    }
                ),
            )
            for key in wanted
        ]
        found: dict[str, T] = {}
        for key, result in zip(wanted, run_batch(self.http, ops) if ops else [], strict=True):
            if not result.ok:
                raise MailboxError(
                    f"lookup by key failed: {result.status} {result.error_code}",
                    status=result.status,
                    code=result.error_code,
                    retryable=result.status in RETRYABLE_ITEM_STATUSES,
                )
            for raw in (result.body or {}).get("value", []):
                sync_key, _sf = mapping.stamps(raw)
                if sync_key == key:
                    found[key] = parse(raw)
                    break
        return found

    # -- events --------------------------------------------------------------------------------
    def create_events(self, items: Sequence[CalendarEvent]) -> list[WriteResult[CalendarEvent]]:
        self._require_key(items)
        ops = [BatchOp("POST", "/me/events", mapping.event_to_graph(e)) for e in items]
        return self._write(ops, mapping.event_from_graph, prefer=(UTC_PREFER,))

    def update_events(
        self, updates: Sequence[Update[CalendarEvent]]
    ) -> list[WriteResult[CalendarEvent]]:
        ops = [
            BatchOp(
                "PATCH",
                f"/me/events/{quote(u.item.id)}",
                mapping.event_to_graph(u.item),
                self._if_match(u.expected_version),
            )
            for u in updates
        ]
        return self._write(ops, mapping.event_from_graph, prefer=(UTC_PREFER,))

    def delete_events(self, deletes: Sequence[Delete]) -> list[WriteResult[CalendarEvent]]:
        ops = [
            BatchOp("DELETE", f"/me/events/{quote(d.id)}", None, self._if_match(d.expected_version))
            for d in deletes
        ]
        return self._deleted(ops, deletes)

    def find_events_by_key(self, keys: Iterable[str]) -> Mapping[str, CalendarEvent]:
        return self._find_by_key("/me/events", keys, mapping.event_from_graph)

    # -- To Do tasks ---------------------------------------------------------------------------
    def _tasks_path(self) -> str:
        return f"/me/todo/lists/{quote(self.ensure_setup().tasks_list_id)}/tasks"

    def create_tasks(self, items: Sequence[TodoTask]) -> list[WriteResult[TodoTask]]:
        self._require_key(items)
        path = self._tasks_path()
        ops = [BatchOp("POST", path, mapping.task_to_graph(t, with_extension=True)) for t in items]
        return self._write(ops, mapping.task_from_graph)

    def update_tasks(self, updates: Sequence[Update[TodoTask]]) -> list[WriteResult[TodoTask]]:
        path = self._tasks_path()
        ops = [
            BatchOp(
                "PATCH",
                f"{path}/{quote(u.item.id)}",
                mapping.task_to_graph(u.item),
                self._if_match(u.expected_version),
            )
            for u in updates
        ]
        return self._write(ops, mapping.task_from_graph)

    def delete_tasks(self, deletes: Sequence[Delete]) -> list[WriteResult[TodoTask]]:
        path = self._tasks_path()
        ops = [
            BatchOp("DELETE", f"{path}/{quote(d.id)}", None, self._if_match(d.expected_version))
            for d in deletes
        ]
        return self._deleted(ops, deletes)

    def find_tasks_by_key(self, keys: Iterable[str]) -> Mapping[str, TodoTask]:
        """To Do has no extended properties to filter on: list the (small) list with its open
        extensions and match."""
        wanted = set(keys)
        found: dict[str, TodoTask] = {}
        if not wanted:
            return found
        params = {"$expand": f"extensions($filter=id eq '{mapping.TASK_EXTENSION}')"}
        for raw in self.http.iter_pages(self._tasks_path(), params=params):
            task = mapping.task_from_graph(raw)
            if task.sync_key in wanted:
                found[task.sync_key] = task
        return found

    # -- accounting ----------------------------------------------------------------------------
    def call_counts(self) -> Mapping[str, int]:
        return self.http.call_counts()
