"""The email stage's pure parts: mailbox message -> rules input, activity fields and limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scc_desktop.mailbox.types import Address, AttachmentKind, AttachmentRef, MessageFolder
from scc_desktop.mailbox.types import MailMessage as BoxMessage
from scc_desktop.sync.email_rules import EmailDecision, ManualSave, Relation
from scc_desktop.sync.email_session import (
    DESCRIPTION_LIMIT,
    _manual_for,
    _notes,
    _Plan,
    _read_bounded,
    _stamped_id,
    email_message_fields,
    task_fields,
    to_rules_message,
)

WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def box(**changes: object) -> BoxMessage:
    values: dict[str, object] = {
        "id": "AAMk1",
        "internet_message_id": "<abc@acme.example>",
        "conversation_id": "conv-1",
        "folder": "inbox",
        "from_": Address("jane.cooper@acme.example", "Jane Cooper"),
        "to": (Address("alex.morgan@northwind.example", "Alex Morgan"),),
        "cc": (Address("lars.nilsson@acme.example"),),
        "subject": "Pricing",
        "body_text": "Hello Alex",
        "body_html": "<p>Hello Alex</p>",
        "received": WHEN,
        "sent": WHEN,
        "is_inbound": True,
    }
    values.update(changes)
    return BoxMessage(**values)  # type: ignore[arg-type]


def plan(message: BoxMessage, **decision: object) -> _Plan:
    fields: dict[str, object] = {
        "share": True,
        "code": "autoshare",
        "reason": "auto-shared",
        "key": "mid:abc@acme.example",
        "target": "task",
        "path": "autoshare",
    }
    fields.update(decision)
    rules = to_rules_message(message, None)
    assert rules is not None
    return _Plan(message, rules, EmailDecision(**fields), message.internet_message_id)  # type: ignore[arg-type]


def test_rules_message_from_a_mailbox_message() -> None:
    rules = to_rules_message(box(), None)
    assert rules is not None
    assert rules.direction == "inbound"
    assert [p.address for p in rules.sender] == ["jane.cooper@acme.example"]
    assert [p.address for p in rules.cc] == ["lars.nilsson@acme.example"]
    assert rules.message_id == "<abc@acme.example>"
    assert rules.manual is None
    assert to_rules_message(box(is_inbound=False), None).direction == "outbound"  # type: ignore[union-attr]


def test_an_undated_message_is_not_decided() -> None:
    assert to_rules_message(box(received=None, sent=None), None) is None


@pytest.mark.parametrize(
    ("folder", "categories", "expected"),
    [
        (MessageFolder.SALESFORCE_EMAILS, (), ManualSave(via="folder")),
        (MessageFolder.INBOX, ("salesforce",), ManualSave(via="category")),
        (MessageFolder.SENT, ("Salesforce",), ManualSave(via="category")),
        (MessageFolder.INBOX, ("Red category",), None),
    ],
)
def test_manual_paths(
    folder: MessageFolder, categories: tuple[str, ...], expected: ManualSave | None
) -> None:
    assert _manual_for(folder, box(categories=categories)) == expected


def test_stamped_salesforce_ids_only() -> None:
    assert _stamped_id(box(sf_key="00T5g000000000AAAA")) == "00T5g000000000AAAA"
    assert _stamped_id(box(sf_key="02s5g000000000AAAA")) == "02s5g000000000AAAA"
    assert _stamped_id(box(sf_key="email:mid:x")) is None
    assert _stamped_id(box(sf_key=None)) is None


def test_task_fields() -> None:
    fields = task_fields(plan(box(), who_ids=("003A", "003B"), what_id="006X"), "")
    assert fields["SCC_Sync_Key__c"] == "email:mid:abc@acme.example"
    assert fields["TaskSubtype"] == "Email"
    assert fields["Status"] == "Completed"
    assert fields["ActivityDate"] == "2026-11-20"
    assert fields["WhoId"] == "003A"
    assert fields["WhatId"] == "006X"
    assert fields["Subject"] == "Email: Pricing"
    description = fields["Description"]
    assert description.startswith("From: Jane Cooper <jane.cooper@acme.example>\n")
    assert "Cc: lars.nilsson@acme.example" in description
    assert description.endswith("Hello Alex")


def test_task_description_within_limit_and_keeps_notes() -> None:
    fields = task_fields(plan(box(body_text="x" * 50_000)), "Links:\n  a")
    assert len(fields["Description"]) <= DESCRIPTION_LIMIT
    assert fields["Description"].endswith("Links:\n  a")
    assert "WhoId" not in fields and "WhatId" not in fields


def test_email_message_fields() -> None:
    relations = (
        Relation("003A", "Contact", "from", "jane.cooper@acme.example"),
        Relation("003B", "Contact", "cc", "lars.nilsson@acme.example"),
        Relation("005U", "User", "to", "sam.lee@northwind.example"),
    )
    fields = email_message_fields(
        plan(box(), target="email_message", relations=relations, what_id="001A"), ""
    )
    assert fields["ToIds"] == ["003A", "005U"]
    assert fields["CcIds"] == ["003B"]
    assert fields["RelatedToId"] == "001A"
    assert fields["Incoming"] is True
    assert fields["Status"] == "3"
    assert fields["MessageIdentifier"] == "<abc@acme.example>"
    assert fields["ThreadIdentifier"] == "conv-1"
    assert fields["HtmlBody"] == "<p>Hello Alex</p>"
    assert fields["MessageDate"] == "2026-11-20T09:30:00.000Z"


def test_email_message_bodies_within_limits() -> None:
    fields = email_message_fields(
        plan(box(body_text="t" * 200_000, body_html="h" * 200_000), target="email_message"),
        "note",
    )
    assert len(fields["TextBody"]) <= 131_072
    assert fields["TextBody"].endswith("note")
    assert len(fields["HtmlBody"]) <= 131_072


def test_notes_list_links_and_skipped_files() -> None:
    p = plan(box())
    p.links.append("Vehicle mix.xlsx: https://x.example/mix")
    p.skipped_files.append(
        AttachmentRef("a1", "huge.bin", "application/octet-stream", 30 << 20, AttachmentKind.FILE)
    )
    text = _notes(p, 25)
    assert "Links:\n  Vehicle mix.xlsx: https://x.example/mix" in text
    assert "Attachment not uploaded: huge.bin (30720 KB) is larger than 25 MB." in text


def test_read_bounded_stops_past_the_limit() -> None:
    read: list[int] = []

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(10):
            read.append(i)
            yield b"x" * 100

    assert _read_bounded(chunks(), 250) is None
    assert read == [0, 1, 2]
    assert _read_bounded(iter([b"ab", b"cd"]), 4) == b"abcd"
