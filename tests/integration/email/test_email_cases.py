"""Table-driven cases of the email stage, end to end: a message delivered to the sandbox
mailbox, one email stage, the resulting Salesforce records checked through the org's admin API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from email_harness import EmailHarness

from scc_desktop.settings import Value

JANE = "Jane Cooper <jane.cooper@acme.example>"
LARS = "Lars Nilsson <lars.nilsson@acme.example>"
MARIA = "Maria Garcia <maria.garcia@globex.example>"
WEI = "Wei Chen <wei.chen@initech.example>"
RAVI = "Ravi Kumar <ravi.kumar@hooli.example>"
PRIYA = "Priya Shah <priya.shah@northwind.example>"
CHRIS = "Chris Jones <chris.jones1987@gmail.com>"
OLIVIA = "Olivia Brown <olivia.brown@umbrella.example>"


@dataclass(frozen=True)
class Case:
    name: str
    message: dict[str, Any]
    settings: dict[str, Value] = field(default_factory=lambda: {"email_autoshare": True})
    enhanced_email: bool = True
    shared: bool = True
    kind: str = "EmailMessage"  # or "Task"
    whos: tuple[str, ...] = ()  # emails of linked Contacts/Leads
    what: tuple[str, str] | None = None  # (sobject, Name)
    files: tuple[str, ...] = ()  # names uploaded (ContentVersion Title / Attachment Name)
    attachment_objects: bool = False
    description_has: tuple[str, ...] = ()
    issues_has: tuple[str, ...] = ()
    unresolved: bool = False
    extra_opportunity: bool = False  # a second open Acme opportunity owned by the user, newer
    corporate: tuple[str, ...] = ()  # the administrator's blacklist
    followup: dict[str, Any] | None = None  # a later message of the same conversation...
    followup_shared: bool = False  # ...saved by the next session or not


CASES = [
    Case(
        "contact_from", {"from": JANE, "subject": "c1 pricing"}, whos=("jane.cooper@acme.example",)
    ),
    Case(
        "contact_from_and_cc",
        {"from": JANE, "cc": [LARS], "subject": "c2 with cc"},
        whos=("jane.cooper@acme.example", "lars.nilsson@acme.example"),
    ),
    Case("stranger_not_shared", {"from": CHRIS, "subject": "c3 stranger"}, shared=False),
    Case("internal_only_not_shared", {"from": PRIYA, "subject": "c4 internal"}, shared=False),
    Case(
        "internal_and_contact_links_contact_only",
        {"from": PRIYA, "cc": [WEI], "subject": "c5 internal plus wei"},
        whos=("wei.chen@initech.example",),
    ),
    Case(
        "blacklisted_domain_not_shared",
        {"from": MARIA, "subject": "c6 blacklisted domain"},
        settings={"email_autoshare": True, "blacklist": "GLOBEX.example"},
        shared=False,
    ),
    Case(
        "blacklisted_address_other_participant_linked",
        {"from": MARIA, "cc": [WEI], "subject": "c7 several senders"},
        settings={"email_autoshare": True, "blacklist": "maria.garcia@globex.example"},
        whos=("wei.chen@initech.example",),
    ),
    Case(
        "lead_linked_alone",
        {"from": RAVI, "subject": "c8 lead"},
        whos=("ravi.kumar@hooli.example",),
    ),
    Case(
        "autoshare_off_not_shared",
        {"from": JANE, "subject": "c9 switch off"},
        settings={},
        shared=False,
    ),
    Case(
        "opportunity_most_recent",
        {"from": JANE, "subject": "c10 opportunity"},
        settings={"email_autoshare": True, "email_link_opportunities": True},
        whos=("jane.cooper@acme.example",),
        what=("Opportunity", "Acme - Second Fleet"),
        extra_opportunity=True,
    ),
    Case(
        "opportunity_open_before_closed",
        {"from": JANE, "subject": "c11 open wins"},
        settings={"email_autoshare": True, "email_link_opportunities": True},
        whos=("jane.cooper@acme.example",),
        what=("Opportunity", "Acme - Fleet Renewal"),
    ),
    Case(
        "no_opportunity_account",
        {"from": WEI, "subject": "c12 account"},
        settings={"email_autoshare": True, "email_link_opportunities": True},
        whos=("wei.chen@initech.example",),
        what=("Account", "Initech"),
    ),
    Case(
        "colleagues_opportunity_is_not_mine_account",
        {"from": MARIA, "subject": "c13 globex"},
        settings={"email_autoshare": True, "email_link_opportunities": True},
        whos=("maria.garcia@globex.example",),
        what=("Account", "Globex Inc"),
    ),
    Case(
        "lead_with_link_opportunities_not_shared",
        {"from": RAVI, "subject": "c14 lead no account"},
        settings={"email_autoshare": True, "email_link_opportunities": True},
        shared=False,
    ),
    Case(
        "enhanced_email_off_task",
        {"from": JANE, "subject": "c15 as task", "body": "Per-vehicle pricing please."},
        enhanced_email=False,
        kind="Task",
        whos=("jane.cooper@acme.example",),
        description_has=("From: Jane Cooper <jane.cooper@acme.example>", "Per-vehicle pricing"),
    ),
    Case(
        "save_as_task_setting",
        {"from": WEI, "subject": "c16 forced task"},
        settings={"email_autoshare": True, "save_emails_as": "task"},
        kind="Task",
        whos=("wei.chen@initech.example",),
    ),
    Case(
        "file_uploaded_as_file",
        {
            "from": JANE,
            "subject": "c17 file",
            "attachments": [{"name": "spec.pdf", "contentType": "application/pdf", "size": 40000}],
        },
        whos=("jane.cooper@acme.example",),
        files=("spec.pdf",),
    ),
    Case(
        "file_uploaded_as_attachment",
        {
            "from": JANE,
            "subject": "c18 attachment object",
            "attachments": [{"name": "quote.pdf", "contentType": "application/pdf", "size": 2000}],
        },
        settings={"email_autoshare": True, "attachments_as": "attachment"},
        whos=("jane.cooper@acme.example",),
        files=("quote.pdf",),
        attachment_objects=True,
    ),
    Case(
        "oversize_skipped_with_issue",
        {
            "from": JANE,
            "subject": "c19 oversize",
            "attachments": [
                {"name": "huge.bin", "contentType": "application/octet-stream", "size": 1_600_000},
                {"name": "small.txt", "contentType": "text/plain", "size": 1000},
            ],
        },
        settings={"email_autoshare": True, "attachment_max_mb": 1},
        enhanced_email=False,
        kind="Task",
        whos=("jane.cooper@acme.example",),
        files=("small.txt",),
        description_has=("Attachment not uploaded: huge.bin",),
        issues_has=("Attachment not uploaded: huge.bin",),
    ),
    Case(
        "inline_image_and_cloud_link_not_uploaded",
        {
            "from": JANE,
            "subject": "c20 inline",
            "body": {"contentType": "html", "content": "<p>Logo <img src='cid:logo'></p>"},
            "attachments": [
                {
                    "name": "logo.png",
                    "contentType": "image/png",
                    "size": 500,
                    "isInline": True,
                    "contentId": "logo",
                },
                {
                    "@odata.type": "#microsoft.graph.referenceAttachment",
                    "name": "Vehicle mix.xlsx",
                    "sourceUrl": "https://acme.sharepoint.example/mix.xlsx",
                },
                {"name": "real.pdf", "contentType": "application/pdf", "size": 3000},
            ],
        },
        enhanced_email=False,
        kind="Task",
        whos=("jane.cooper@acme.example",),
        files=("real.pdf",),
        description_has=("Links:", "Vehicle mix.xlsx"),
    ),
    Case(
        "manual_category_unmatched_unresolved",
        {"from": CHRIS, "subject": "c21 manual stranger", "categories": ["Salesforce"]},
        settings={},
        unresolved=True,
        issues_has=("Saved without a link: c21 manual stranger",),
    ),
    Case(
        "manual_ignores_blacklist",
        {"from": MARIA, "subject": "c22 manual blacklisted", "categories": ["Salesforce"]},
        settings={"blacklist": "globex.example"},
        whos=("maria.garcia@globex.example",),
    ),
    Case(
        "outgoing_sent_items",
        {"folder": "sentitems", "to": [OLIVIA], "subject": "c23 outgoing"},
        whos=("olivia.brown@umbrella.example",),
    ),
    Case(
        "corporate_blacklist_domain_not_shared",
        {"from": MARIA, "subject": "c24 corporate list"},
        corporate=("globex.example",),
        shared=False,
    ),
    Case(
        "user_and_corporate_lists_merged",
        {"from": MARIA, "cc": [WEI, JANE], "subject": "c25 both lists"},
        settings={"email_autoshare": True, "blacklist": "wei.chen@initech.example"},
        corporate=("globex.example",),
        whos=("jane.cooper@acme.example",),
    ),
    Case(
        "blacklist_address_case_insensitive",
        {"from": MARIA, "cc": [WEI], "subject": "c26 case"},
        settings={"email_autoshare": True, "blacklist": "Maria.Garcia@GLOBEX.Example"},
        whos=("wei.chen@initech.example",),
    ),
    Case(
        "blacklist_exact_domain_no_suffix_match",
        {"from": MARIA, "subject": "c27 no partial domain"},
        settings={"email_autoshare": True, "blacklist": "lobex.example, globex"},
        whos=("maria.garcia@globex.example",),
    ),
    Case(
        "link_opportunities_off_no_what",
        {"from": JANE, "subject": "c28 opportunities off"},
        settings={"email_autoshare": True, "email_link_opportunities": False},
        whos=("jane.cooper@acme.example",),
        extra_opportunity=True,
    ),
    Case(
        "task_links_the_opportunity",
        {"from": JANE, "subject": "c29 task with what"},
        settings={"email_autoshare": True, "email_link_opportunities": True},
        enhanced_email=False,
        kind="Task",
        whos=("jane.cooper@acme.example",),
        what=("Opportunity", "Acme - Fleet Renewal"),
    ),
    Case(
        "thread_autosave_on_with_autoshare_off",
        {"from": JANE, "subject": "c30 thread on", "categories": ["Salesforce"]},
        settings={"email_thread_autosave": True},
        whos=("jane.cooper@acme.example",),
        followup={"from": JANE, "subject": "RE: c30 thread on"},
        followup_shared=True,
    ),
    Case(
        "thread_autosave_off_next_message_not_saved",
        {"from": JANE, "subject": "c31 thread off", "categories": ["Salesforce"]},
        settings={"email_thread_autosave": False},
        whos=("jane.cooper@acme.example",),
        followup={"from": JANE, "subject": "RE: c31 thread off"},
        followup_shared=False,
    ),
    Case(
        "thread_next_message_blacklisted_not_saved",
        {"from": JANE, "subject": "c32 thread blacklisted", "categories": ["Salesforce"]},
        settings={"email_thread_autosave": True, "blacklist": "globex.example"},
        whos=("jane.cooper@acme.example",),
        followup={"from": MARIA, "subject": "RE: c32 thread blacklisted"},
        followup_shared=False,
    ),
    Case(
        "lead_in_sent_items",
        {"folder": "sentitems", "to": [RAVI], "subject": "c33 to a lead"},
        whos=("ravi.kumar@hooli.example",),
    ),
]


def _who_ids(h: EmailHarness, record: dict[str, Any], kind: str) -> set[str]:
    if kind == "Task":
        return {record["WhoId"]} if record.get("WhoId") else set()
    return {
        r["RelationId"]
        for r in h.records("EmailMessageRelation")
        if r["EmailMessageId"] == record["Id"]
        and r.get("RelationId")
        and str(r["RelationId"]).startswith(("003", "00Q"))
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_email_case(email_empty_mailbox: EmailHarness, case: Case) -> None:
    h = email_empty_mailbox
    if not case.enhanced_email:
        h.sf_settings(enhanced_email=False)
    if case.extra_opportunity:
        h.create_record(
            "Opportunity",
            {
                "Name": "Acme - Second Fleet",
                "AccountId": h.id_of("Account", "Acme Corporation"),
                "StageName": "Prospecting",
                "CloseDate": "2030-01-31",
            },
        )
    first = h.deliver(**case.message)

    result = h.run(case.corporate, **case.settings)

    subject = case.message["subject"]
    found = h.activities(subject)
    if not case.shared:
        assert found == [], found
        assert result.shared == 0
        return
    assert len(found) == 1, found
    record = found[0]
    assert str(record["Id"]).startswith("02s" if case.kind == "EmailMessage" else "00T")
    if case.kind == "Task":
        assert record["TaskSubtype"] == "Email"
        assert record["Status"] == "Completed"
        assert record["ActivityDate"]
    else:
        assert record["Status"] == "3"
        assert record["MessageIdentifier"]
    whos = {h.contact_id(e) if "hooli" not in e else h.lead_id(e) for e in case.whos}
    assert _who_ids(h, record, case.kind) == whos
    what_field = "WhatId" if case.kind == "Task" else "RelatedToId"
    expected_what = h.id_of(*case.what) if case.what else None
    assert record.get(what_field) == expected_what
    if case.attachment_objects:
        names = {r["Name"] for r in h.records("Attachment") if r["ParentId"] == record["Id"]}
    else:
        links = {
            r["ContentDocumentId"]
            for r in h.records("ContentDocumentLink")
            if r["LinkedEntityId"] == record["Id"]
        }
        names = {r["Title"] for r in h.records("ContentVersion") if r["ContentDocumentId"] in links}
    assert names == set(case.files)
    assert result.attachments_uploaded == len(case.files)
    text = record.get("Description") if case.kind == "Task" else record.get("TextBody")
    for part in case.description_has:
        assert part in (text or ""), text
    issues = h.open_issues()
    for title in case.issues_has:
        assert title in issues, issues
    assert result.unresolved == (1 if case.unresolved else 0)
    if case.followup is not None:
        h.deliver(**case.followup, conversationId=first["conversationId"])
        h.run(case.corporate, **case.settings)
        later = h.activities(case.followup["subject"])
        assert len(later) == (1 if case.followup_shared else 0), later
        assert len(h.activities(subject)) == 1  # the first one is not saved again
