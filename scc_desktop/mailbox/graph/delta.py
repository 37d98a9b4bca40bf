"""Graph delta streams: replay `@odata.nextLink` / `@odata.deltaLink` exactly, page by page.

A cursor is an opaque string (JSON) holding the link to call next, the stream's scope (folder
id, calendar window) and whether the pass in progress lists the whole stream. The caller saves
it after applying each page, so an interrupted first pass resumes where it stopped. A 410 Gone
or `syncStateNotFound` restarts a full pass; the pages then say so (`restarted`, `full_sync`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from scc_desktop.mailbox.graph.http import GraphError, GraphHttp
from scc_desktop.mailbox.protocol import MailboxError
from scc_desktop.mailbox.types import Change, DeltaPage

log = logging.getLogger(__name__)

T = TypeVar("T")

CURSOR_VERSION = 1
RESYNC_CODES = frozenset(
    {"syncstatenotfound", "syncstateinvalid", "resyncrequired", "invaliddeltatoken"}
)


def is_resync_error(exc: GraphError) -> bool:
    return exc.status == 410 or exc.code.lower() in RESYNC_CODES


def encode_cursor(url: str, scope: str, full: bool, base_url: str = "") -> str:
    """The link is kept relative to the Graph base URL when it lies under it, so a cursor
    survives a change of host or port (the built-in sandbox takes a free port at each start)."""
    if base_url and url.startswith(base_url.rstrip("/") + "/"):
        url = url[len(base_url.rstrip("/")) :]
    return json.dumps(
        {"v": CURSOR_VERSION, "scope": scope, "url": url, "full": full}, separators=(",", ":")
    )


def decode_cursor(cursor: str | None, scope: str) -> tuple[str, bool] | None:
    """(url, full) of a cursor taken for this scope, else None (start a full pass)."""
    if not cursor:
        return None
    try:
        data = json.loads(cursor)
    except ValueError:
        log.warning("unreadable delta cursor; starting a full pass")
        return None
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
        return None
    if data.get("scope") != scope or not isinstance(data.get("url"), str):
        return None
    return str(data["url"]), bool(data.get("full", False))


def read_delta(
    http: GraphHttp,
    *,
    stream: str,
    scope: str,
    initial_url: str,
    cursor: str | None,
    parse: Callable[[Mapping[str, Any]], T],
    prefer: Sequence[str] = (),
    max_restarts: int = 2,
) -> Iterator[DeltaPage[T]]:
    """Yield the pages of one delta pass, from `cursor` (or from the start) to the deltaLink."""
    state = decode_cursor(cursor, scope)
    if state is None:
        url, full = initial_url, True
    else:
        url, full = state
    restarts = 0
    restarted = False
    while True:
        try:
            data = http.get_json(url, kind="delta", prefer=prefer)
        except GraphError as exc:
            if not is_resync_error(exc):
                raise
            restarts += 1
            if restarts > max_restarts:
                raise
            log.info("%s: delta token expired (%s); restarting a full pass", stream, exc.code)
            url, full, restarted = initial_url, True, True
            continue
        changes: list[Change[T]] = []
        for raw in data.get("value", []):
            item_id = str(raw.get("id", ""))
            removed = raw.get("@removed")
            if removed is not None:
                reason = str(removed.get("reason", "deleted")) if isinstance(removed, dict) else ""
                changes.append(Change(item_id, None, reason or "deleted"))
            else:
                changes.append(Change(item_id, parse(raw)))
        next_link = data.get("@odata.nextLink")
        delta_link = data.get("@odata.deltaLink")
        if next_link:
            page = DeltaPage(
                stream,
                tuple(changes),
                encode_cursor(next_link, scope, full, http.base_url),
                done=False,
                full_sync=full,
                restarted=restarted,
            )
        elif delta_link:
            page = DeltaPage(
                stream,
                tuple(changes),
                encode_cursor(delta_link, scope, False, http.base_url),
                done=True,
                full_sync=full,
                restarted=restarted,
            )
        else:
            raise MailboxError(f"{stream}: a delta page without nextLink or deltaLink")
        restarted = False
        yield page
        if page.done:
            return
        url = str(next_link)
