"""Issue 7's bad-input catalogue: hostile or malformed items on either side, all in one batch,
through the whole path (mailbox message / contact / event, or Salesforce record -> the app's
session -> the other side), with a few ordinary "canary" items beside them.

The inputs go in the way the real services would deliver them: a raw RFC 5322 message through the
Graph emulator's `deliver` (`{"mime": ...}`, read the way Exchange reads what it receives: see
`scc_desktop/sandbox/microsoft/mime.py`), contacts and events through Graph itself with the demo
user's token, Salesforce records through the org (the admin records call, with the org's own
field validation), and an admin's validation and duplicate rules (`POST /__sandbox__/salesforce/
rules`). Email Auto-Sharing is on; the emails come from Jane Cooper, a Salesforce Contact.

One module fixture runs a first session (the demo data), injects every case, then runs sessions
until one is quiet; each case then asserts, for its own item: the sessions did not crash, and the
item either arrived correctly (truncated per the rules in docs/reliability.md) or there is one
open Sync Issue naming it and the reason; the canaries arrived, so nothing else was lost.
"""

from __future__ import annotations

import base64
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from scc_desktop.auth.credentials import MemoryBackend
from scc_desktop.context import AppContext
from scc_desktop.demo import DemoAccounts, start_demo
from scc_desktop.engine_runner import EngineRunner, SandboxConnections
from scc_desktop.net import https_session
from scc_desktop.sync.state import SyncState

ALEX = "alex.morgan@northwind.example"
JANE = "Jane Cooper <jane.cooper@acme.example>"
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10))}
WINDOWS_RESERVED |= {f"LPT{i}" for i in range(1, 10)}
ELLIPSIS = "\u2026"
JANE_RTL = "Jane \U0001f680 \u05db\u05d4\u05df"


class World:
    def __init__(self, root: Path) -> None:
        self.ctx = AppContext.open(
            root / "p", secret_backend=MemoryBackend(), policy_path=root / "none.toml"
        )
        self.ctx.settings().set("email_autoshare", True)
        self.demo: DemoAccounts = start_demo(self.ctx.paths)
        self.runner = EngineRunner(self.ctx, SandboxConnections(self.demo))
        self.state = SyncState(self.ctx.db)
        self.http = https_session(self.demo.ca_file)
        self.admin = self.demo.server.admin_url
        self.graph_url = self.demo.graph_url
        self.sessions: list[dict[str, Any]] = []

    def close(self) -> None:
        self.http.close()
        self.demo.stop()

    def session(self) -> dict[str, Any]:
        try:
            outcome = self.runner.run("bad-input", lambda _s: None)
            record = {
                "status": outcome.status,
                "changes": outcome.changes,
                "message": outcome.message,
            }
        except Exception as exc:  # a crash is what this catalogue must never see
            record = {"status": "crashed", "changes": -1, "message": repr(exc)}
        self.sessions.append(record)
        return record

    # Salesforce, from inside the org
    def sf(self, sobject: str) -> list[dict[str, Any]]:
        reply = self.http.get(f"{self.admin}/salesforce/records", params={"type": sobject})
        reply.raise_for_status()
        return [r for r in reply.json()["records"] if not r.get("IsDeleted")]

    def sf_write(self, sobject: str, fields: dict[str, Any]) -> None:
        reply = self.http.post(
            f"{self.admin}/salesforce/records",
            json={"type": sobject, "fields": fields, "user": ALEX},
        )
        assert reply.status_code < 300, reply.text

    def alex_id(self) -> str:
        return str(next(u["Id"] for u in self.sf("User") if u["Email"] == ALEX))

    # the mailbox
    def graph(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {self.demo.microsoft.access_token()}",
            "Prefer": 'outlook.timezone="UTC"',
        }
        reply = self.http.request(method, f"{self.graph_url}{path}", headers=headers, **kwargs)
        assert reply.status_code < 300, (method, path, reply.status_code, reply.text[:500])
        return reply

    def deliver_mime(self, raw: bytes) -> None:
        reply = self.http.post(
            f"{self.admin}/microsoft/deliver",
            json={"mime": base64.b64encode(raw).decode("ascii")},
        )
        assert reply.status_code == 201, reply.text

    def dump(self, kind: str) -> list[dict[str, Any]]:
        reply = self.http.get(f"{self.admin}/microsoft/dump", params={"kind": kind})
        reply.raise_for_status()
        return list(reply.json())

    # Sync Issues
    def issues_naming(self, text: str) -> list[Any]:
        return [
            i
            for i in self.state.open_issues()
            if text in i.title or text in i.message or text in str(i.payload)
        ]


# --- building inputs -----------------------------------------------------------------------------


def mime(
    marker: str,
    *,
    subject: str | None = None,
    headers: str = "",
    body: bytes = b"Hello from the catalogue.\r\n",
    content_type: str = "text/plain; charset=utf-8",
    sender: str = JANE,
    to: str = "Alex Morgan <alex.morgan@northwind.example>",
    extra: bytes = b"",
) -> bytes:
    now = datetime.now(UTC) - timedelta(hours=1)
    head = (
        f"From: {sender}\r\nTo: {to}\r\n"
        f"Subject: {subject if subject is not None else f'Catalogue {marker}'}\r\n"
        f"Date: {now.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        f"Message-ID: <{marker.lower()}@catalogue.example>\r\nMIME-Version: 1.0\r\n{headers}"
        f"Content-Type: {content_type}\r\n\r\n"
    )
    return head.encode("utf-8") + body + extra


def with_attachment(marker: str, file_name: bytes) -> bytes:
    boundary = b"b0undary"
    body = (
        b"--" + boundary + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"See attached.\r\n--" + boundary + b"\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="' + file_name + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b"catalogue file " + marker.encode())
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )
    return mime(marker, body=body, content_type='multipart/mixed; boundary="b0undary"')


def encoded(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


# --- the cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    marker: str
    inject: Callable[[World], None]
    check: Callable[[World, str], None]
    """Asserts the item arrived (as the rules say) or there is one issue naming it."""


def email_of(world: World, marker: str) -> dict[str, Any] | None:
    found = [
        e
        for e in world.sf("EmailMessage")
        if marker in (e.get("Subject") or "")
        or marker.lower() in (e.get("MessageIdentifier") or "")
    ]
    assert len(found) <= 1, f"{marker} saved {len(found)} times"
    return found[0] if found else None


def task_of(world: World, email: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in world.sf("Task") if t["Id"] == email.get("ActivityId"))


def files_of(world: World, parent: str) -> list[dict[str, Any]]:
    return [v for v in world.sf("ContentVersion") if v.get("FirstPublishLocationId") == parent]


def saved(world: World, marker: str) -> dict[str, Any]:
    email = email_of(world, marker)
    assert email is not None, (marker, world.issues_naming(marker))
    return email


def saved_or_issue(world: World, marker: str, reason: str) -> dict[str, Any] | None:
    email = email_of(world, marker)
    if email is None:
        issues = world.issues_naming(marker)
        assert len(issues) == 1 and reason in issues[0].message, (marker, issues)
    return email


def safe_file_name(name: str) -> bool:
    stem = name.split(".", maxsplit=1)[0].upper()
    return (
        0 < len(name) <= 255
        and "/" not in name
        and "\\" not in name
        and ".." not in name
        and not any(unicodedata.category(c) == "Cc" for c in name)
        and stem not in WINDOWS_RESERVED
    )


def check_file(expected_part: str) -> Callable[[World, str], None]:
    def check(world: World, marker: str) -> None:
        email = saved(world, marker)
        files = files_of(world, email["Id"])
        assert len(files) == 1, files
        title = files[0]["Title"]
        assert safe_file_name(title), title
        assert expected_part in title, title

    return check


def sf_contact(world: World, marker: str) -> dict[str, Any] | None:
    found = [
        c
        for c in world.sf("Contact")
        if marker in f"{c.get('FirstName')} {c.get('LastName')} {c.get('Email')}"
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def mb_contact(world: World, marker: str) -> dict[str, Any] | None:
    found = [
        c
        for c in world.dump("contacts")
        if marker in f"{c.get('givenName')} {c.get('surname')} "
        f"{[e.get('address') for e in c.get('emailAddresses') or []]}"
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def assert_fields(item: dict[str, Any], **expected: Any) -> None:
    got = {k: item.get(k) for k in expected}
    assert got == expected, got


def one_issue(world: World, marker: str, *reasons: str) -> None:
    issues = world.issues_naming(marker)
    assert len(issues) == 1, (marker, [(i.title, i.message) for i in issues])
    text = issues[0].title + " " + issues[0].message
    assert any(r in text for r in reasons), (reasons, text)


def mailbox_contact_case(
    name: str, marker: str, contact: dict[str, Any], check: Callable[[World, str], None]
) -> Case:
    def inject(world: World) -> None:
        world.graph("POST", "/me/contacts", json={**contact, "categories": ["Salesforce"]})

    return Case(name, marker, inject, check)


def mailbox_event_case(
    name: str, marker: str, event: dict[str, Any], check: Callable[[World, str], None]
) -> Case:
    def inject(world: World) -> None:
        start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
        body = {
            "subject": f"Catalogue {marker}",
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
            "categories": ["Salesforce"],
            **event,
        }
        world.graph("POST", "/me/events", json=body)

    return Case(name, marker, inject, check)


def sf_event(world: World, marker: str) -> dict[str, Any] | None:
    found = [e for e in world.sf("Event") if marker in (e.get("Subject") or "")]
    assert len(found) <= 1, found
    return found[0] if found else None


def arrived_or_issue(
    find: Callable[[World, str], dict[str, Any] | None],
    good: Callable[[dict[str, Any]], None],
    *reasons: str,
) -> Callable[[World, str], None]:
    def check(world: World, marker: str) -> None:
        item = find(world, marker)
        if item is None:
            one_issue(world, marker, *reasons)
        else:
            good(item)

    return check


def build_cases() -> list[Case]:
    cases: list[Case] = []

    def email(name: str, marker: str, raw: Callable[[str], bytes], check: Any) -> None:
        cases.append(Case(name, marker, lambda w: w.deliver_mime(raw(marker)), check))

    # --- emails: mailbox -> Salesforce ---------------------------------------------------------
    email(
        "mime: multipart never closed, garbage after",
        "BX01",
        lambda m: mime(
            m,
            content_type='multipart/alternative; boundary="never"',
            body=b"--never\r\nContent-Type: text/plain\r\n\r\npart one\r\n--never\r\n\x00\xff",
        ),
        saved,
    )
    email(
        "headers: no colon, broken encoded word, folded junk",
        "BX02",
        lambda m: mime(
            m,
            subject=f"=?utf-8?B?!!notbase64?= Catalogue {m}",
            headers="this line has no colon\r\nX-Junk: \x01\x02\r\n\tfolded\r\n",
        ),
        saved,
    )

    def many_recipients(w: World, m: str) -> None:
        e = saved(w, m)
        assert len(e["ToAddress"]) <= 4000 and e["ToAddress"].endswith(ELLIPSIS), len(
            e["ToAddress"]
        )

    email(
        "5,000 recipients",
        "BX03",
        lambda m: mime(m, to=", ".join(f"r{i}@recipients{i % 50}.example" for i in range(5000))),
        many_recipients,
    )

    def latin1(w: World, m: str) -> None:
        e = saved(w, m)
        assert "Café crème" in (e.get("TextBody") or ""), e.get("TextBody")

    email(
        "body in ISO-8859-1",
        "BX04",
        lambda m: mime(
            m,
            body="Café crème\r\n".encode("latin-1"),
            content_type="text/plain; charset=iso-8859-1",
        ),
        latin1,
    )

    def replaced(w: World, m: str) -> None:
        e = saved(w, m)
        assert "\ufffd" in (e.get("TextBody") or ""), e.get("TextBody")

    email(
        "body claims UTF-8, holds invalid bytes",
        "BX05",
        lambda m: mime(m, body=b"caf\xff\xfe bytes\r\n"),
        replaced,
    )
    email(
        "unknown charset",
        "BX06",
        lambda m: mime(m, body=b"na\xefve\r\n", content_type="text/plain; charset=x-no-such"),
        saved,
    )

    def huge_subject(w: World, m: str) -> None:
        e = saved(w, m)
        assert len(e["Subject"]) <= 3000 and e["Subject"].endswith(ELLIPSIS)
        # Enhanced Email's Task is made by Salesforce from the EmailMessage (its own cut)
        assert len(task_of(w, e)["Subject"]) <= 255

    email(
        "a 1 MB subject", "BX07", lambda m: mime(m, subject=f"{m} " + "s" * 1_000_000), huge_subject
    )

    rtl = "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 "
    rtl += "\U0001f680\U0001f469\u200d\U0001f4bb"

    def exact_subject(w: World, m: str) -> None:
        e = saved(w, m)
        assert e["Subject"] == f"{rtl} {m}", e["Subject"]
        assert "\U0001f680" in (e.get("FromName") or ""), e.get("FromName")

    email(
        "emoji and right-to-left text in subject and sender name",
        "BX08",
        lambda m: mime(
            m,
            subject=encoded(f"{rtl} {m}"),
            sender=encoded(JANE_RTL) + " <jane.cooper@acme.example>",
        ),
        exact_subject,
    )

    def quoted(w: World, m: str) -> None:
        e = saved(w, m)
        assert "tom.o'neil+deals@globex.example" in e["CcAddress"], e["CcAddress"]

    email(
        "addresses with quotes, commas and plus signs",
        "BX09",
        lambda m: mime(
            m, headers="Cc: \"O'Neil, Tom (deals)\" <tom.o'neil+deals@globex.example>\r\n"
        ),
        quoted,
    )

    def idn(w: World, m: str) -> None:
        e = saved(w, m)
        cc = e.get("CcAddress") or ""
        assert "anna@b\u00fccher.example" in cc or "anna@xn--bcher-kva.example" in cc, cc

    email(
        "an IDN domain",
        "BX10",
        lambda m: mime(m, headers=f"Cc: {encoded('Anna')} <anna@b\u00fccher.example>\r\n"),
        idn,
    )

    def scripted(w: World, m: str) -> None:
        e = saved(w, m)
        task = task_of(w, e)
        assert "<script" not in (task.get("Description") or "").lower(), task["Description"]
        assert "<script" not in (e.get("TextBody") or "").lower(), e.get("TextBody")
        assert "Visible text" in (e.get("TextBody") or ""), e.get("TextBody")

    email(
        "HTML with scripts and handlers",
        "BX11",
        lambda m: mime(
            m,
            body=b"<html><body><p onclick='x()'>Visible text</p>"
            b"<script>alert('owned')</script><img src=x onerror=alert(1)></body></html>",
            content_type="text/html; charset=utf-8",
        ),
        scripted,
    )
    email(
        "attachment named ../../etc/passwd",
        "BX12",
        lambda m: with_attachment(m, b"../../etc/passwd"),
        check_file("passwd"),
    )
    email(
        "attachment name with NUL and control characters",
        "BX13",
        lambda m: with_attachment(m, b"evil\x00name\x07.txt"),
        check_file("name"),
    )
    email(
        "attachment name of 300 characters",
        "BX14",
        lambda m: with_attachment(m, b"A" * 300 + b".pdf"),
        check_file(".pdf"),
    )
    email("attachment named CON", "BX15", lambda m: with_attachment(m, b"CON"), check_file("CON"))
    email(
        "attachment named aux.txt, Windows path",
        "BX16",
        lambda m: with_attachment(m, b"C:\\Windows\\aux.txt"),
        check_file(".txt"),
    )

    def generated_id(w: World, m: str) -> None:
        assert saved(w, m)["MessageIdentifier"]

    email(
        "no Message-ID and no Date",
        "BX17",
        lambda m: (
            mime(m)
            .replace(f"Message-ID: <{m.lower()}@catalogue.example>\r\n".encode(), b"")
            .replace(b"Date: ", b"X-Old-Date: ")
        ),
        generated_id,
    )

    def long_body(w: World, m: str) -> None:
        e = saved(w, m)
        body = e.get("TextBody") or ""
        assert len(body) <= 131_072 and ELLIPSIS in body, len(body)

    email("a 2 MB body", "BX18", lambda m: mime(m, body=b"lorem ipsum " * 180_000), long_body)

    # --- contacts: mailbox -> Salesforce --------------------------------------------------------
    def names_exact(first: str, last: str) -> Callable[[dict[str, Any]], None]:
        def good(c: dict[str, Any]) -> None:
            assert (c["FirstName"], c["LastName"]) == (first, last), c

        return good

    cases.append(
        mailbox_contact_case(
            "mailbox contact: emoji and right-to-left names",
            "MC01",
            {
                "givenName": "Zo\u00eb \U0001f600",
                "surname": "\u05db\u05d4\u05df MC01",
                "emailAddresses": [{"address": "mc01@catalogue.example", "name": "x"}],
            },
            arrived_or_issue(
                sf_contact, names_exact("Zo\u00eb \U0001f600", "\u05db\u05d4\u05df MC01")
            ),
        )
    )
    cases.append(
        mailbox_contact_case(
            "mailbox contact with no email address",
            "MC02",
            {"givenName": "Nomail", "surname": "MC02"},
            arrived_or_issue(sf_contact, lambda c: assert_fields(c, Email=None), "email"),
        )
    )

    def plus_email(c: dict[str, Any]) -> None:
        assert c["Email"] == "o'brien+crm.mc03@catalogue.example", c

    cases.append(
        mailbox_contact_case(
            "mailbox contact: quote and plus in the address",
            "MC03",
            {
                "givenName": "Pat",
                "surname": "O'Brien MC03",
                "emailAddresses": [{"address": "o'brien+crm.mc03@catalogue.example"}],
            },
            arrived_or_issue(sf_contact, plus_email),
        )
    )
    cases.append(
        mailbox_contact_case(
            "mailbox contact: IDN email domain",
            "MC04",
            {
                "givenName": "Anna",
                "surname": "Bücher MC04",
                "emailAddresses": [{"address": "anna.mc04@b\u00fccher.example"}],
            },
            arrived_or_issue(
                sf_contact,
                lambda c: assert_fields(c, Email="anna.mc04@b\u00fccher.example"),
                "INVALID_EMAIL_ADDRESS",
            ),
        )
    )

    def long_notes(c: dict[str, Any]) -> None:
        raise AssertionError(f"32,000+ characters of notes cannot fit Description: {c['Id']}")

    cases.append(
        mailbox_contact_case(
            "mailbox contact: 100,000 characters of notes",
            "MC05",
            {
                "givenName": "Verbose",
                "surname": "MC05",
                "emailAddresses": [{"address": "mc05@catalogue.example"}],
                "personalNotes": "note " * 20_000,
            },
            arrived_or_issue(sf_contact, long_notes, "STRING_TOO_LONG", "too long"),
        )
    )
    cases.append(
        mailbox_contact_case(
            "mailbox contact: a 300-character job title",
            "MC06",
            {
                "givenName": "Titled",
                "surname": "MC06",
                "emailAddresses": [{"address": "mc06@catalogue.example"}],
                "jobTitle": "Chief " * 50,
            },
            arrived_or_issue(sf_contact, lambda c: None, "STRING_TOO_LONG", "too long"),
        )
    )
    cases.append(
        mailbox_contact_case(
            "mailbox contact refused by a validation rule",
            "MC07",
            {
                "givenName": "Rejected",
                "surname": "REJECTME MC07",
                "emailAddresses": [{"address": "mc07@catalogue.example"}],
            },
            lambda w, m: (
                None if sf_contact(w, m) is None else pytest.fail("created despite the rule"),
                one_issue(w, m, "Contacts named REJECTME are not allowed"),
            )[1],
        )
    )
    cases.append(
        mailbox_contact_case(
            "mailbox contact refused by a duplicate rule",
            "MC08",
            {
                "givenName": "Dupli",
                "surname": "Cate MC08",
                "emailAddresses": [{"address": "mc08-second@catalogue.example"}],
            },
            lambda w, m: one_issue(w, m, "DUPLICATES_DETECTED"),
        )
    )

    def html_name(c: dict[str, Any]) -> None:
        assert c["FirstName"] == "<script>alert(1)</script>", c

    cases.append(
        mailbox_contact_case(
            "mailbox contact: markup in the name",
            "MC09",
            {
                "givenName": "<script>alert(1)</script>",
                "surname": "MC09",
                "emailAddresses": [{"address": "mc09@catalogue.example"}],
            },
            arrived_or_issue(sf_contact, html_name),
        )
    )

    # --- events: mailbox -> Salesforce ----------------------------------------------------------
    cases.append(
        mailbox_event_case(
            "mailbox event: a 400-character subject",
            "EV01",
            {"subject": "Catalogue EV01 " + "long " * 80},
            arrived_or_issue(sf_event, lambda e: None, "STRING_TOO_LONG", "too long"),
        )
    )
    cases.append(
        mailbox_event_case(
            "mailbox event: a 1 MB body",
            "EV02",
            {"body": {"contentType": "text", "content": "agenda " * 150_000}},
            arrived_or_issue(sf_event, lambda e: None, "STRING_TOO_LONG", "too long"),
        )
    )

    def rtl_event(e: dict[str, Any]) -> None:
        assert e["Subject"] == f"{rtl} EV03", e["Subject"]

    cases.append(
        mailbox_event_case(
            "mailbox event: emoji and right-to-left subject",
            "EV03",
            {"subject": f"{rtl} EV03"},
            arrived_or_issue(sf_event, rtl_event),
        )
    )
    cases.append(
        mailbox_event_case(
            "mailbox event: a 300-character location",
            "EV04",
            {"location": {"displayName": "Room " * 60}},
            arrived_or_issue(sf_event, lambda e: None, "STRING_TOO_LONG", "too long"),
        )
    )

    # --- Salesforce -> the mailbox --------------------------------------------------------------
    def sf_contact_case(
        name: str, marker: str, fields: dict[str, Any], good: Callable[[dict[str, Any]], None]
    ) -> None:
        def inject(world: World) -> None:
            world.sf_write("Contact", {"OwnerId": world.alex_id(), **fields})

        cases.append(Case(name, marker, inject, arrived_or_issue(mb_contact, good)))

    def mb_names(first: str, last: str) -> Callable[[dict[str, Any]], None]:
        def good(c: dict[str, Any]) -> None:
            assert (c.get("givenName"), c.get("surname")) == (first, last), c

        return good

    sf_contact_case(
        "Salesforce contact: emoji and right-to-left names",
        "SC01",
        {
            "FirstName": "\U0001f469\u200d\U0001f52c Ada",
            "LastName": "\u0644\u0627\u0641\u0644\u0627\u0633 SC01",
            "Email": "sc01@catalogue.example",
        },
        mb_names("\U0001f469\u200d\U0001f52c Ada", "\u0644\u0627\u0641\u0644\u0627\u0633 SC01"),
    )
    sf_contact_case(
        "Salesforce contact with no email",
        "SC02",
        {"FirstName": "Nomail", "LastName": "SC02"},
        lambda c: assert_fields(c, givenName="Nomail", emailAddresses=[]),
    )
    sf_contact_case(
        "Salesforce contact: markup in the name",
        "SC03",
        {
            "FirstName": "<img src=x onerror=alert(1)>",
            "LastName": "SC03",
            "Email": "sc03@catalogue.example",
        },
        mb_names("<img src=x onerror=alert(1)>", "SC03"),
    )

    def plus(c: dict[str, Any]) -> None:
        assert [e["address"] for e in c["emailAddresses"]] == ["d'arcy+sc04@catalogue.example"]

    sf_contact_case(
        "Salesforce contact: quote and plus in the address",
        "SC04",
        {"FirstName": "Pat", "LastName": "D'Arcy SC04", "Email": "d'arcy+sc04@catalogue.example"},
        plus,
    )

    def mb_task(world: World, marker: str) -> dict[str, Any] | None:
        found = [t for t in world.dump("tasks") if marker in (t.get("title") or "")]
        assert len(found) <= 1, found
        return found[0] if found else None

    def sf_task_case(
        name: str,
        marker: str,
        fields: dict[str, Any],
        good: Callable[[dict[str, Any]], None],
        *reasons: str,
    ) -> None:
        def inject(world: World) -> None:
            world.sf_write(
                "Task",
                {
                    "OwnerId": world.alex_id(),
                    "Subject": f"Catalogue {marker}",
                    "Status": "Not Started",
                    "Priority": "Normal",
                    **fields,
                },
            )

        cases.append(Case(name, marker, inject, arrived_or_issue(mb_task, good, *reasons)))

    def long_description(t: dict[str, Any]) -> None:
        assert len((t.get("body") or {}).get("content") or "") >= 31_000, t.get("body")

    sf_task_case(
        "Salesforce task: 32,000 characters of description",
        "ST01",
        {"Description": "d" * 32_000},
        long_description,
    )

    def far_due(t: dict[str, Any]) -> None:
        assert (t.get("dueDateTime") or {}).get("dateTime", "").startswith("4000-12-31"), t

    sf_task_case(
        "Salesforce task due on 4000-12-31 (the last date Salesforce allows)",
        "ST02",
        {"ActivityDate": "4000-12-31"},
        far_due,
        "date",
        "range",
    )

    def old_due(t: dict[str, Any]) -> None:
        assert (t.get("dueDateTime") or {}).get("dateTime", "").startswith("1700-01-01"), t

    sf_task_case(
        "Salesforce task due on 1700-01-01 (the first date Salesforce allows)",
        "ST03",
        {"ActivityDate": "1700-01-01"},
        old_due,
        "date",
        "range",
    )
    return cases


CASES = build_cases()
CANARY = "CANARY"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = World(tmp_path_factory.mktemp("bad-input"))
    try:
        first = world.session()
        assert first["status"] == "ok", first
        world.http.post(
            f"{world.admin}/salesforce/rules",
            json={
                "validation": [
                    {
                        "sobject": "Contact",
                        "field": "LastName",
                        "contains": "REJECTME",
                        "message": "Contacts named REJECTME are not allowed",
                    }
                ],
                "duplicate": [
                    {
                        "sobject": "Contact",
                        "fields": ["FirstName", "LastName"],
                        "message": "Use one of these records?",
                    }
                ],
            },
        ).raise_for_status()
        # the record the duplicate rule matches
        world.sf_write(
            "Contact",
            {"FirstName": "Dupli", "LastName": "Cate MC08", "Email": "mc08@catalogue.example"},
        )
        for case in CASES:
            case.inject(world)
        # canaries: one ordinary item of each kind in the same batch
        world.deliver_mime(mime(CANARY))
        world.graph(
            "POST",
            "/me/contacts",
            json={
                "givenName": "Canary",
                "surname": CANARY,
                "emailAddresses": [{"address": "canary@catalogue.example"}],
                "categories": ["Salesforce"],
            },
        )
        world.sf_write(
            "Contact",
            {
                "OwnerId": world.alex_id(),
                "FirstName": "Sf",
                "LastName": f"{CANARY}SF",
                "Email": "canary-sf@catalogue.example",
            },
        )
        for _ in range(4):
            record = world.session()
            if record["status"] in ("ok", "partial") and record["changes"] == 0:
                break
        yield world
    finally:
        world.close()


def test_no_session_crashed_and_the_canaries_arrived(world: World) -> None:
    print(world.sessions)
    assert all(s["status"] != "crashed" for s in world.sessions), world.sessions
    assert world.sessions[-1]["changes"] == 0, world.sessions
    saved(world, CANARY)
    assert sf_contact(world, f"Canary {CANARY}") is not None
    assert mb_contact(world, f"{CANARY}SF") is not None


def test_the_catalogue_has_at_least_30_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.marker for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.marker}-{c.name}" for c in CASES])
def test_bad_input(world: World, case: Case) -> None:
    assert all(s["status"] != "crashed" for s in world.sessions), world.sessions
    case.check(world, case.marker)
