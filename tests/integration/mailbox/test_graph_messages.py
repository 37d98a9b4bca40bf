"""Message delta streams against the sandbox: pages, removals, 410 resync, quiet-pass cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scc_desktop.auth.microsoft import MicrosoftAuth
from scc_desktop.mailbox.graph import GraphMailbox
from scc_desktop.mailbox.protocol import Mailbox
from scc_desktop.mailbox.types import DeltaPage, MailMessage, MessageFolder


class LocalView:
    """What a sync engine keeps of a stream: items by id, the cursor, and full-pass bookkeeping
    (at the end of a full pass, what the pass did not list is gone)."""

    def __init__(self) -> None:
        self.items: dict[str, MailMessage] = {}
        self.cursor: str | None = None
        self.applied: list[str] = []  # every id ever upserted, in order
        self._seen: set[str] | None = None

    def apply(self, page: DeltaPage[MailMessage]) -> None:
        if page.restarted or (page.full_sync and self._seen is None):
            self._seen = set()
        for change in page.changes:
            if change.item is None:
                self.items.pop(change.id, None)
            else:
                self.items[change.id] = change.item
                self.applied.append(change.id)
                if self._seen is not None:
                    self._seen.add(change.id)
        if page.done and page.full_sync and self._seen is not None:
            for gone in set(self.items) - self._seen:
                del self.items[gone]
            self._seen = None
        self.cursor = page.cursor  # saved only after the page is applied

    def sync(
        self, mailbox: GraphMailbox, folder: MessageFolder = MessageFolder.INBOX, **kw: Any
    ) -> int:
        pages = 0
        for page in mailbox.read_messages(folder, self.cursor, **kw):
            self.apply(page)
            pages += 1
        return pages


def deliver(admin: Any, n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [
        admin.ms(
            "deliver",
            {
                "from": f"Sender {i} <sender{i}@customer.example>",
                "subject": f"Message {i}",
                "body": f"Body {i}",
                "internetMessageId": f"<m{i}@customer.example>",
                **extra,
            },
        )
        for i in range(start, start + n)
    ]


def test_graph_mailbox_implements_the_protocol(mailbox: GraphMailbox) -> None:
    assert isinstance(mailbox, Mailbox)
    assert mailbox.me().email == "alex.morgan@northwind.example"


def test_setup_creates_once_then_finds_in_one_call(
    mailbox: GraphMailbox, admin: Any, server: Any
) -> None:
    first = mailbox.ensure_setup()
    assert set(first.created) == {
        "Salesforce Emails",
        "Salesforce Contacts",
        "Salesforce Tasks",
        "Salesforce",
    }
    again = GraphMailbox(mailbox.http)
    admin.reset_counters()
    second = again.ensure_setup()
    assert second.created == ()
    assert (second.emails_folder_id, second.contacts_folder_id, second.tasks_list_id) == (
        first.emails_folder_id,
        first.contacts_folder_id,
        first.tasks_list_id,
    )
    assert admin.counters()["total"] == 1  # one $batch of four lists
    assert [f["displayName"] for f in admin.dump("folders")].count("Salesforce Emails") == 1
    assert [c["displayName"] for c in admin.dump("categories")].count("Salesforce") == 1


def test_delta_pages_changes_and_removals(mailbox: GraphMailbox, admin: Any) -> None:
    mailbox.page_size = 10
    delivered = deliver(admin, 35)
    view = LocalView()
    assert view.sync(mailbox) == 4  # 10 + 10 + 10 + 5
    assert len(view.items) == 35
    msg = view.items[delivered[0]["id"]]
    assert msg.subject == "Message 0" and msg.is_inbound and msg.body_text == "Body 0"
    assert msg.from_ is not None and msg.from_.email == "sender0@customer.example"
    assert msg.internet_message_id == "<m0@customer.example>"
    # new mail, a deletion and a move out of the folder
    deliver(admin, 2, start=100)
    http = mailbox.http
    http.send_json("DELETE", f"/me/messages/{delivered[1]['id']}")
    setup = mailbox.ensure_setup()
    moved = mailbox.move_message(delivered[2]["id"], MessageFolder.SALESFORCE_EMAILS)
    assert moved.id == delivered[2]["id"]  # immutable ids survive the move
    assert moved.folder == setup.emails_folder_id
    mailbox.set_message_categories(delivered[3]["id"], ["Salesforce"])
    view.sync(mailbox)
    assert len(view.items) == 35 + 2 - 2
    assert delivered[1]["id"] not in view.items and delivered[2]["id"] not in view.items
    assert view.items[delivered[3]["id"]].categories == ("Salesforce",)
    # the moved message shows up in the Salesforce Emails stream, with the same id
    sf_view = LocalView()
    sf_view.sync(mailbox, MessageFolder.SALESFORCE_EMAILS)
    assert list(sf_view.items) == [delivered[2]["id"]]


def test_interrupted_first_pass_resumes_from_the_saved_cursor(
    mailbox: GraphMailbox, admin: Any
) -> None:
    mailbox.page_size = 10
    deliver(admin, 25)
    view = LocalView()
    pages = mailbox.read_messages(MessageFolder.INBOX, None)
    view.apply(next(pages))  # crash after the first page was applied and its cursor saved
    pages.close()
    assert len(view.items) == 10
    admin.reset_counters()
    assert view.sync(mailbox) == 2
    assert len(view.items) == 25 and len(view.applied) == 25  # nothing listed twice
    assert admin.counters()["message_delta"] == 2


def test_410_leads_to_a_full_resync_without_duplicates(mailbox: GraphMailbox, admin: Any) -> None:
    mailbox.page_size = 10
    delivered = deliver(admin, 30)
    view = LocalView()
    view.sync(mailbox)
    assert len(view.items) == 30
    # while the token is invalid, one message goes away: only a full pass can tell
    admin.ms("invalidate_delta_tokens")
    mailbox.http.send_json("DELETE", f"/me/messages/{delivered[5]['id']}")
    deliver(admin, 1, start=200)
    admin.reset_counters()
    restarted: list[bool] = []
    for page in mailbox.read_messages(MessageFolder.INBOX, view.cursor):
        restarted.append(page.restarted)
        assert page.full_sync
        view.apply(page)
    assert restarted[0] is True and not any(restarted[1:])
    assert admin.counters()["message_delta"] == 1 + len(restarted)  # the 410, then the pages
    ids = [m.internet_message_id for m in view.items.values()]
    assert len(ids) == len(set(ids)) == 30  # 30 - 1 deleted + 1 new, no duplicate
    assert delivered[5]["id"] not in view.items
    # and the stream is quiet again afterwards
    admin.reset_counters()
    view.sync(mailbox)
    assert admin.counters()["message_delta"] == 1


def test_acceptance_quiet_second_pass_over_2500_messages_costs_one_call(
    mailbox: GraphMailbox, admin: Any, auth: MicrosoftAuth
) -> None:
    admin.reset("large", messages=3125, contacts=0, days=30)  # 2,500 in Inbox, 625 in Sent Items
    # a reset forgets every token: sign in again (device flow), as the user would
    auth.sign_in_device_flow(lambda code: admin.ms("approve_device", {"user_code": code.user_code}))
    mailbox.page_size = 500
    view = LocalView()
    view.sync(mailbox, with_body=False)
    assert len(view.items) == 2500
    assert all(m.is_inbound for m in view.items.values())
    admin.reset_counters()
    mailbox.http.reset_counts()
    pages = view.sync(mailbox, with_body=False)
    assert pages == 1
    counters = admin.counters()
    assert counters["message_delta"] == 1 and counters["total"] == 1
    assert mailbox.call_counts()["total"] == 1
    assert len(view.items) == 2500


def test_sent_items_are_outbound_and_stamps_are_read(mailbox: GraphMailbox, admin: Any) -> None:
    sent = admin.ms(
        "deliver",
        {
            "folder": "sentitems",
            "to": "Ann <ann@acme.example>",
            "subject": "Quote",
            "body": {"contentType": "html", "content": "<p>Hi <b>Ann</b></p>"},
        },
    )
    view = LocalView()
    view.sync(mailbox, MessageFolder.SENT)
    msg = view.items[sent["id"]]
    assert not msg.is_inbound and msg.to[0].email == "ann@acme.example"
    assert msg.body_text == "Hi Ann" and "<b>Ann</b>" in msg.body_html
    assert msg.sf_key is None
    mailbox.stamp_message(sent["id"], "00T000000000042")
    assert mailbox.get_message(sent["id"]).sf_key == "00T000000000042"
    view.sync(mailbox, MessageFolder.SENT)
    assert view.items[sent["id"]].sf_key == "00T000000000042"


def test_first_pass_bounded_by_received_date(mailbox: GraphMailbox, admin: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for days in (30, 10, 2, 1):
        stamp = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        admin.ms("deliver", {"subject": f"{days} days ago", "receivedDateTime": stamp})
    view = LocalView()
    view.sync(mailbox, received_since=now - timedelta(days=6))
    assert sorted(m.subject for m in view.items.values()) == ["1 days ago", "2 days ago"]
    # the bound travels with the cursor: later passes stay inside it
    admin.ms("deliver", {"subject": "new"})
    view.sync(mailbox)
    assert sorted(m.subject for m in view.items.values()) == ["1 days ago", "2 days ago", "new"]
