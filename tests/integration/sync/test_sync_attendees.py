"""Meeting attendees through the engine against the sandbox org: they flow from the mailbox (where
they are read-only) to Salesforce, which keeps only the people it knows; sessions converge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sf_side_fixtures import SfSide, settings_snapshot, sf_demo, sf_side

from scc_desktop.sandbox import demo_people as cast
from scc_desktop.store.db import open_database
from scc_desktop.sync.engine import KindOptions, sync_kind
from scc_desktop.sync.memory import MemoryRepository
from scc_desktop.sync.salesforce_side import salesforce_repositories
from scc_desktop.sync.state import SyncState

__all__ = ["sf_demo", "sf_side"]  # fixtures used by pytest


def test_attendees_converge_with_salesforce_keeping_only_known_people(
    sf_side: SfSide, tmp_path: Path
) -> None:
    sf_events = salesforce_repositories(
        sf_side.gateway,
        settings_snapshot(),
        user_id=sf_side.user_id,
        now=datetime.now(UTC),
        attendees=True,
    )["event"]
    assert "attendees" in sf_events.fields
    mailbox = MemoryRepository("mailbox", "event", service="memory")
    mailbox.read_only = frozenset({"attendees"})
    contact, other, colleague = cast.CONTACTS[0], cast.CONTACTS[1], cast.COLLEAGUES[0]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    meeting = mailbox.add(
        {
            "subject": "Attendee convergence",
            "start": start,
            "end": start + timedelta(hours=1),
            "show_as": "tentative",
            "attendees": [contact.email, colleague.email, "stranger@nowhere.example"],
        }
    )
    db = open_database(tmp_path / "state.sqlite3")
    try:
        state = SyncState(db)

        def sync() -> int:
            result = sync_kind("event", mailbox, sf_events, state, KindOptions())
            assert result.failed_items == 0, result.issues
            return result.changes

        assert sync() >= 1  # the org's own events come to the mailbox too
        (link,) = [lk for lk in state.links("event") if lk.mailbox_id == meeting]
        sf_id = link.salesforce_id or ""
        held = sf_events.get([sf_id])[0].fields
        assert held["attendees"] == tuple(sorted({contact.email.lower(), colleague.email.lower()}))
        assert held["show_as"] == "busy"  # Salesforce has no "tentative"
        assert sync() == 0  # quiet: neither the missing stranger nor busy comes back
        assert mailbox.values(meeting)["show_as"] == "tentative"

        mailbox.edit(meeting, {"attendees": [other.email, "stranger@nowhere.example"]})
        assert sync() == 1
        assert sf_events.get([sf_id])[0].fields["attendees"] == (other.email.lower(),)
        assert sync() == 0

        updates = mailbox.calls["update"]
        assert sf_side.gateway.writer.update("Event", [{"Id": sf_id, "Location": "Room 7"}])[
            0
        ].success
        assert sync() == 1
        assert mailbox.calls["update"] == updates + 1
        assert mailbox.values(meeting)["location"] == "Room 7"
        assert mailbox.values(meeting)["attendees"] == tuple(
            sorted({other.email.lower(), "stranger@nowhere.example"})
        )
        assert mailbox.values(meeting)["show_as"] == "tentative"
        assert sync() == 0
    finally:
        db.close()
