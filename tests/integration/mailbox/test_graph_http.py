"""The HTTP layer against the sandbox: Retry-After, the concurrency limit, streamed attachments."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest

from scc_desktop.mailbox.graph import GraphError, GraphHttp, GraphMailbox
from scc_desktop.mailbox.types import AttachmentKind, MessageFolder

MB = 1024 * 1024


def synthetic(size: int) -> bytes:
    """The bytes the sandbox makes up for an attachment delivered with only a size."""
    return (b"%PDF-1.4 sandbox attachment\n" * (size // 28 + 1))[:size]


def test_retry_after_is_honoured_without_sleeping(
    mailbox: GraphMailbox, admin: Any, sleeps: list[float]
) -> None:
    admin.faults(throttle_rate=0.5, retry_after_s=9, seed=5)
    for _ in range(10):
        assert mailbox.http.get_json("/me")["userPrincipalName"]
    admin.faults()
    assert sleeps and set(sleeps) == {9.0}
    counts = admin.counters()
    assert counts["me"] == 10 + len(sleeps)  # every throttled call was sent again, once


def test_persistent_5xx_gives_up_as_retryable(
    mailbox: GraphMailbox, admin: Any, sleeps: list[float]
) -> None:
    admin.faults(error_rate=1.0)
    with pytest.raises(GraphError) as err:
        mailbox.http.get_json("/me")
    admin.faults()
    assert err.value.retryable and err.value.status in (500, 503)
    assert len(sleeps) == mailbox.http.max_attempts - 1
    assert sleeps == sorted(sleeps)  # exponential backoff without Retry-After


def test_never_more_than_four_requests_in_flight(
    server: Any, mailbox: GraphMailbox, admin: Any, auth: Any, ms_info: dict[str, Any]
) -> None:
    admin.ms("settings", {"request_delay_ms": 150})

    def hammer(http: GraphHttp) -> list[GraphError]:
        errors: list[GraphError] = []

        def call() -> None:
            try:
                http.get_json("/me")
            except GraphError as exc:  # the greedy client may exhaust its retries
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return errors

    admin.reset_counters()
    assert hammer(mailbox.http) == []
    assert mailbox.http.max_in_flight == 4
    assert admin.counters()["me"] == 12  # no MailboxConcurrency 429, so no retry
    # the control: a client allowed 8 in flight is throttled by the mailbox (and retries)
    greedy_sleeps: list[float] = []
    greedy = GraphHttp(
        ms_info["graph_url"],
        auth,
        ca_file=str(server.ca.ca_file),
        max_concurrency=8,
        sleep=greedy_sleeps.append,
    )
    admin.reset_counters()
    hammer(greedy)
    admin.ms("settings", {"request_delay_ms": 0})
    assert greedy.max_in_flight > 4
    assert greedy_sleeps and admin.counters()["me"] > 12


def test_large_attachments_are_streamed(mailbox: GraphMailbox, admin: Any) -> None:
    delivered = admin.ms(
        "deliver",
        {
            "from": "Ann <ann@acme.example>",
            "subject": "Contract",
            "body": {"contentType": "html", "content": '<p>See attached <img src="cid:logo"></p>'},
            "attachments": [
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": "contract.pdf",
                    "contentType": "application/pdf",
                    "size": 12 * MB,
                },
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": "logo.png",
                    "contentType": "image/png",
                    "isInline": True,
                    "contentId": "logo",
                    "contentBytes": "iVBORw0KGgo=",
                },
                {
                    "@odata.type": "#microsoft.graph.referenceAttachment",
                    "name": "Deck",
                    "sourceUrl": "https://contoso.sharepoint.example/deck.pptx",
                },
            ],
        },
    )
    msg = next(
        c.item
        for p in mailbox.read_messages(MessageFolder.INBOX, None)
        for c in p.changes
        if c.id == delivered["id"]
    )
    assert msg is not None and msg.has_attachments
    refs = {a.name: a for a in mailbox.attachments(msg.id)}
    big, logo, deck = refs["contract.pdf"], refs["logo.png"], refs["Deck"]
    assert (big.kind, big.size) == (AttachmentKind.FILE, 12 * MB)
    assert logo.kind is AttachmentKind.INLINE and logo.is_inline
    assert deck.kind is AttachmentKind.REFERENCE
    assert deck.url is None  # Graph v1.0 has no sourceUrl on a referenceAttachment
    with pytest.raises(ValueError, match="no content"):
        deck.open()
    digest = hashlib.sha256()
    chunks = 0
    largest = 0
    for chunk in big.open():
        digest.update(chunk)
        chunks += 1
        largest = max(largest, len(chunk))
    assert digest.hexdigest() == hashlib.sha256(synthetic(12 * MB)).hexdigest()
    assert chunks > 10 and largest <= 256 * 1024  # streamed, never held whole
    assert logo.read_all() == b"\x89PNG\r\n\x1a\n"
    assert mailbox.call_counts()["attachment"] == 3  # the list and two $value reads
