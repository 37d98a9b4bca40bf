"""One kind's session over in-memory sides: scenarios, each followed by a quiet second session."""

from __future__ import annotations

import json

import pytest
from sync_harness import Harness

from scc_desktop.sync.engine import Progress, stream_name
from scc_desktop.sync.state import SyncState


def contact(first: str, last: str, email: str | None = None, **more: str) -> dict[str, str | None]:
    return {"first_name": first, "last_name": last, "email": email, **more}


def test_first_session_links_everything_and_the_second_changes_nothing(harness: Harness) -> None:
    h = harness
    h.mb.add(contact("Ada", "Lovelace", "ada@example.com", title="Countess"))
    h.mb.add(contact("Alan", "Turing", "alan@example.com"))
    h.sf.add(contact("Grace", "Hopper", "grace@example.com", phone="+1 555"))
    h.sf.add(contact("Ada", "Lovelace", "ADA@example.com ", phone="+44 1"))  # the same person
    result = h.sync()
    assert result.counts_dict() == {
        "mailbox": {"created": 1, "updated": 1, "deleted": 0},
        "salesforce": {"created": 1, "updated": 1, "deleted": 0},
    }
    assert len(h.mb.items) == 3 and len(h.sf.items) == 3
    assert len(h.pairs()) == 3
    h.assert_converged()
    ada = h.sf_by("email", "ada@example.com")
    assert len(ada) == 1
    assert h.sf.values(ada[0])["title"] == "Countess"  # gaps filled both ways on first match
    h.assert_quiet()


def test_edits_flow_both_ways(harness: Harness) -> None:
    h = harness
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    s = h.sf.add(contact("Grace", "Hopper", "grace@example.com"))
    h.sync()
    h.mb.edit(m, {"title": "Countess"})
    h.sf.edit(s, {"city": "Arlington"})
    result = h.sync()
    assert result.counts["salesforce"].updated == 1
    assert result.counts["mailbox"].updated == 1
    assert h.sf.values(h.sf_by("email", "ada@example.com")[0])["title"] == "Countess"
    assert h.mb.values(h.mb_by("email", "grace@example.com")[0])["city"] == "Arlington"
    h.assert_converged()
    h.assert_quiet()


def test_phone_in_salesforce_and_title_in_mailbox_both_survive(harness: Harness) -> None:
    h = harness
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com", phone="1", title="A"))
    h.sync()
    s = h.pairs()[0][1]
    h.sf.edit(s, {"phone": "2"})
    h.mb.edit(m, {"title": "B"})
    result = h.sync()
    assert result.conflicts == 0
    for values in (h.mb.values(m), h.sf.values(s)):
        assert (values["phone"], values["title"]) == ("2", "B")
    assert h.state.open_issues("contact", "conflict") == []
    h.assert_quiet()


@pytest.mark.parametrize(
    ("policy", "winner"),
    [("newest_wins", "SF"), ("salesforce_wins", "SF"), ("mailbox_wins", "MB")],
)
def test_same_field_on_both_sides_goes_to_the_policy_and_the_loser_is_kept(
    harness: Harness, policy: str, winner: str
) -> None:
    h = harness
    h.set(policy=policy)
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com", title="A"))
    h.sync()
    s = h.pairs()[0][1]
    h.mb.edit(m, {"title": "MB"})
    h.sf.edit(s, {"title": "SF"})  # later, so the newest
    result = h.sync()
    assert result.conflicts == 1
    assert h.mb.values(m)["title"] == winner == h.sf.values(s)["title"]
    issues = h.state.open_issues("contact", "conflict")
    assert len(issues) == 1
    payload = issues[0].payload
    assert payload["winner"] == ("mailbox" if winner == "MB" else "salesforce")
    assert payload["fields"] == ["title"]
    assert payload["mailbox"]["title"] == "MB"  # type: ignore[index]
    assert payload["salesforce"]["title"] == "SF"  # type: ignore[index]
    h.assert_quiet()


def test_mailbox_deletion_only_unlinks_and_is_not_recreated(harness: Harness) -> None:
    h = harness
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    h.sync()
    s = h.pairs()[0][1]
    h.mb.remove(m)
    result = h.sync()
    assert result.changes == 0
    assert s in h.sf.items
    assert h.pairs() == []
    h.sf.edit(s, {"title": "Changed in Salesforce"})  # the tombstone keeps it out of the mailbox
    assert h.sync().changes == 0
    assert h.mb.items == {}
    h.sf.remove(s)  # and Salesforce deleting it later forgets the tombstone
    h.sync()
    assert h.state.links("contact") == []
    h.assert_quiet()


def test_readding_a_detached_contact_relinks_it_instead_of_duplicating(harness: Harness) -> None:
    h = harness
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    h.sync()
    h.mb.remove(m)
    h.sync()
    h.mb.add(contact("Ada", "Lovelace", "ada@example.com", title="Back"))
    result = h.sync()
    assert result.counts["salesforce"].created == 0
    assert len(h.sf.items) == 1
    assert len(h.pairs()) == 1
    h.assert_converged()
    h.assert_quiet()


def test_mailbox_deletion_with_propagation_deletes_in_salesforce(harness: Harness) -> None:
    h = harness
    h.set(propagate_mailbox_deletes=True)
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    h.sync()
    h.mb.remove(m)
    result = h.sync()
    assert result.counts["salesforce"].deleted == 1
    assert h.sf.items == {}
    assert h.state.links("contact") == []
    h.assert_quiet()


def test_salesforce_deletion_removes_the_mailbox_copy(harness: Harness) -> None:
    h = harness
    s = h.sf.add(contact("Ada", "Lovelace", "ada@example.com"))
    h.sync()
    h.sf.remove(s)
    result = h.sync()
    assert result.counts["mailbox"].deleted == 1
    assert h.mb.items == {}
    h.assert_quiet()


def test_an_edit_beats_a_deletion_under_newest_wins(harness: Harness) -> None:
    h = harness
    s = h.sf.add(contact("Ada", "Lovelace", "ada@example.com"))
    h.sync()
    m = h.pairs()[0][0]
    h.mb.edit(m, {"title": "Edited"})
    h.sf.remove(s)
    result = h.sync()
    assert result.counts["salesforce"].created == 1
    (new_sf,) = h.sf.items
    assert h.sf.values(new_sf)["title"] == "Edited"
    assert h.pairs() == [(m, new_sf)]
    h.assert_quiet()


def test_salesforce_to_mailbox_mirrors_and_keeps_reverted_edits(harness: Harness) -> None:
    h = harness
    h.set(direction="sf_to_mailbox")
    h.mb.add(contact("Only", "Mailbox", "only@example.com"))
    s = h.sf.add(contact("Ada", "Lovelace", "ada@example.com", title="A"))
    h.sync()
    assert len(h.sf.items) == 1 and len(h.mb.items) == 2
    m = h.pairs()[0][0]
    h.mb.edit(m, {"title": "Mine"})
    result = h.sync()
    assert h.mb.values(m)["title"] == "A"
    assert h.sf.values(s)["title"] == "A"
    assert result.conflicts == 1  # the reverted mailbox edit is kept in Sync Issues
    h.assert_quiet()


def test_mailbox_to_salesforce_never_writes_the_mailbox(harness: Harness) -> None:
    h = harness
    h.set(direction="mailbox_to_sf")
    h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    s = h.sf.add(contact("Only", "Salesforce", "only@example.com"))
    h.sync()
    assert len(h.mb.items) == 1 and len(h.sf.items) == 2
    h.sf.remove(s)
    h.sync()
    assert h.mb.calls["create"] + h.mb.calls["update"] + h.mb.calls["delete"] == 0
    h.assert_quiet()


def test_direction_off_does_nothing(harness: Harness) -> None:
    h = harness
    h.set(direction="off")
    h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    result = h.sync()
    assert result.changes == 0
    assert h.sf.items == {}
    assert h.mb.total_calls() == 0 and h.sf.total_calls() == 0


def test_a_server_recasing_an_email_is_not_a_change(harness: Harness) -> None:
    h = harness
    h.mb.add(contact("Ada", "Lovelace", "ada@example.com", phone="+44  20 7946"))
    h.sync()
    s = h.pairs()[0][1]
    h.sf.items[s].fields["email"] = "ADA@Example.com"  # a server rewrite, bypassing normalization
    h.sf.items[s].fields["phone"] = "+44 20 7946 "
    h.sf.touch(s)
    h.assert_quiet()


def test_flaky_versions_do_not_cause_churn(harness: Harness) -> None:
    h = harness
    h.sf.faults.flaky_versions = True
    h.mb.faults.flaky_versions = True
    for n in range(5):
        h.mb.add(contact("P", f"{n}", f"p{n}@example.com"))
        h.sf.add(contact("Q", f"{n}", f"q{n}@example.com"))
    h.sync()
    h.assert_quiet()
    h.assert_quiet()
    m = h.pairs()[0][0]
    h.mb.edit(m, {"title": "T"})  # conditional writes still succeed with the refreshed versions
    assert h.sync().counts["salesforce"].updated == 1
    h.assert_quiet()
    h.assert_converged()


def test_fields_only_one_side_stores_are_not_synced(state: SyncState) -> None:
    h = Harness(state, sf_fields=frozenset({"first_name", "last_name", "email", "phone"}))
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com", email2="ada2@example.com"))
    h.sync()
    h.mb.edit(m, {"email2": "other@example.com"})  # not a synced field: no write
    h.assert_quiet()
    assert h.mb.values(m)["email2"] == "other@example.com"


def test_paged_reads_and_small_batches(state: SyncState) -> None:
    h = Harness(state, page_size=3, max_batch=4)
    for n in range(11):
        h.mb.add(contact("M", f"{n}", f"m{n}@example.com"))
        h.sf.add(contact("S", f"{n}", f"s{n}@example.com"))
    ticks: list[Progress] = []
    from scc_desktop.sync.engine import sync_kind

    result = sync_kind("contact", h.mb, h.sf, h.state, h.options, progress=ticks.append)
    assert result.counts["salesforce"].created == 11 and result.counts["mailbox"].created == 11
    assert h.sf.calls["create"] == 3  # 11 creates in batches of 4
    assert ticks[0].phase == "reading" and ticks[-1].phase == "done"
    assert any(t.phase == "applying" for t in ticks)
    h.assert_converged()
    h.assert_quiet()


def test_a_lost_cursor_relists_without_duplicates_and_sees_deletions(harness: Harness) -> None:
    h = harness
    ids = [h.mb.add(contact("M", f"{n}", f"m{n}@example.com")) for n in range(4)]
    h.sync()
    with h.state.transaction() as conn:
        conn.execute("DELETE FROM cursors")
    s = h.pairs()[0][1]
    h.sf.remove(s)
    result = h.sync()
    assert result.counts["mailbox"].deleted == 1
    assert len(h.sf.items) == 3 and len(h.mb.items) == 3
    assert ids[0] not in h.mb.items
    h.assert_quiet()


def test_cursors_are_stored_per_kind_and_side(harness: Harness) -> None:
    h = harness
    h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    h.sync()
    assert h.state.cursor(stream_name("contact", "mailbox")) is not None
    assert h.state.cursor(stream_name("contact", "salesforce")) is not None


def test_a_failed_create_is_reported_then_retried(harness: Harness) -> None:
    h = harness
    h.sf.faults.fail_create_at = {2}
    for n in range(3):
        h.mb.add(contact("M", f"{n}", f"m{n}@example.com"))
    result = h.sync()
    assert result.failed_items == 1
    assert result.counts["salesforce"].created == 2
    errors = h.state.open_issues("contact", "error")
    assert len(errors) == 1 and "retried" in errors[0].message
    result = h.sync()
    assert result.counts["salesforce"].created == 1
    assert len(h.sf.items) == 3
    assert h.state.open_issues("contact", "error") == []
    h.assert_converged()
    h.assert_quiet()


def test_a_failed_update_on_one_side_of_a_merge_is_completed_next_time(harness: Harness) -> None:
    h = harness
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    h.sync()
    s = h.pairs()[0][1]
    h.mb.edit(m, {"title": "T"})
    h.sf.edit(s, {"phone": "9"})
    h.sf.faults.fail_update_at = {1}
    h.sf.faults.permanent = True
    result = h.sync()
    assert result.failed_items == 1
    assert h.mb.values(m)["phone"] == "9"
    assert h.sf.values(s)["title"] is None
    h.sf.faults.fail_update_at = set()
    h.sync()
    assert h.sf.values(s)["title"] == "T" and h.mb.values(m)["phone"] == "9"
    h.assert_quiet()


def test_a_concurrent_edit_fails_the_conditional_write_and_merges_next_time(
    harness: Harness,
) -> None:
    h = harness
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    h.sync()
    s = h.pairs()[0][1]
    h.mb.edit(m, {"title": "T"})
    real_update = h.sf.update

    def racing_update(items):  # type: ignore[no-untyped-def]
        h.sf.edit(s, {"phone": "7"})  # someone saves in Salesforce meanwhile
        return real_update(items)

    h.sf.update = racing_update  # type: ignore[method-assign]
    assert h.sync().failed_items == 1
    h.sf.update = real_update  # type: ignore[method-assign]
    h.sync()
    assert h.sf.values(s)["title"] == "T" == h.mb.values(m)["title"]
    assert h.sf.values(s)["phone"] == "7" == h.mb.values(m)["phone"]
    h.assert_quiet()


def test_issue_payloads_are_json(harness: Harness) -> None:
    h = harness
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    h.sync()
    s = h.pairs()[0][1]
    h.mb.edit(m, {"title": "A"})
    h.sf.edit(s, {"title": "B"})
    h.sync()
    row = h.state.db.connect().execute("SELECT payload FROM sync_issues").fetchone()
    assert json.loads(row[0])["fields"] == ["title"]


@pytest.mark.parametrize("keep", ["mailbox", "salesforce"])
def test_keep_this_one_applies_the_chosen_version(harness: Harness, keep: str) -> None:
    h = harness
    h.set(policy="salesforce_wins")
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com", title="A", phone="1"))
    h.sync()
    s = h.pairs()[0][1]
    h.mb.edit(m, {"title": "MB"})
    h.sf.edit(s, {"title": "SF", "phone": "2"})
    h.sync()
    assert h.mb.values(m)["title"] == "SF"
    (issue,) = h.state.open_issues("contact", "conflict")
    h.state.keep_version(issue.id, keep)  # type: ignore[arg-type]
    h.sync()
    want = "MB" if keep == "mailbox" else "SF"
    assert h.mb.values(m)["title"] == want == h.sf.values(s)["title"]
    assert h.mb.values(m)["phone"] == "2"  # the non-conflicting edit stays
    assert h.state.open_issues("contact", "conflict") == []
    h.assert_converged()
    h.assert_quiet()


def test_keep_the_version_a_deletion_beat(harness: Harness) -> None:
    h = harness
    h.set(propagate_mailbox_deletes=True, policy="mailbox_wins")
    m = h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    h.sync()
    s = h.pairs()[0][1]
    h.sf.edit(s, {"title": "Edited in Salesforce"})
    h.mb.remove(m)
    h.sync()
    assert h.sf.items == {}  # the deletion won
    (issue,) = h.state.open_issues("contact", "conflict")
    assert issue.payload["salesforce"]["title"] == "Edited in Salesforce"  # type: ignore[index]
    h.state.keep_version(issue.id, "salesforce")
    h.sync()
    h.sync()
    assert [r.fields["title"] for r in h.sf.items.values()] == ["Edited in Salesforce"]
    assert [r.fields["title"] for r in h.mb.items.values()] == ["Edited in Salesforce"]
    h.assert_quiet()


def test_switching_direction_relists_both_sides(harness: Harness) -> None:
    h = harness
    h.set(direction="mailbox_to_sf")
    h.sf.add(contact("Only", "Salesforce", "only@example.com"))
    h.sync()
    assert h.mb.items == {}
    h.set(direction="two_way")
    result = h.sync()  # the Salesforce contact did not change, but two-way now wants it
    assert result.counts["mailbox"].created == 1
    h.assert_converged()
    h.assert_quiet()


def test_events_and_tasks_sync_with_their_fields(make_harness) -> None:  # type: ignore[no-untyped-def]
    ev = make_harness(kind="event")
    e = ev.mb.add(
        {
            "subject": "Board",
            "start": "2026-10-25T09:00:00+01:00",  # Berlin, after DST
            "end": "2026-10-25T10:00:00+01:00",
            "attendees": ["A@x.io", "b@x.io"],
            "is_all_day": False,
            "show_as": "Busy",
            "ical_uid": "UID-9",
        }
    )
    ev.mb.add(
        {"subject": "Holiday", "start": "2026-12-24", "end": "2026-12-25", "is_all_day": True}
    )
    ev.sync()
    sf_board = ev.sf_by("ical_uid", "UID-9")[0]
    assert ev.sf.values(sf_board)["start"] == "2026-10-25T08:00:00Z"
    assert ev.sf.values(sf_board)["attendees"] == ("a@x.io", "b@x.io")
    assert ev.sf.values(ev.sf_by("subject", "Holiday")[0])["start"] == "2026-12-24"
    ev.sf.edit(sf_board, {"location": "Room 1"})
    ev.sync()
    assert ev.mb.values(e)["location"] == "Room 1"
    ev.assert_quiet()
    tk = make_harness(kind="task")
    t = tk.sf.add(
        {"subject": "Call", "due_date": "2026-04-01", "status": "Not Started", "priority": "Normal"}
    )
    tk.sync()
    tk.sf.edit(t, {"status": "Completed"})
    tk.sync()
    assert [r.fields["status"] for r in tk.mb.items.values()] == ["completed"]
    tk.assert_converged()
    tk.assert_quiet()


def test_an_item_leaving_the_scope_is_set_aside_not_deleted(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(kind="event")
    old = h.mb.add({"subject": "Old", "start": "2026-01-05T09:00:00Z", "ical_uid": "U1"})
    h.mb.add({"subject": "New", "start": "2026-03-05T09:00:00Z", "ical_uid": "U2"})
    h.sync()
    sf_old = h.sf_by("ical_uid", "U1")[0]
    window = "2026-02-01"
    h.mb.scope = lambda f: str(f.get("start")) >= window  # the window moved on
    h.sf.scope = lambda f: str(f.get("start")) >= window
    h.mb.touch(old)  # the feed reports it as departed
    result = h.sync()
    assert result.changes == 0
    assert sf_old in h.sf.items and old in h.mb.items  # nothing deleted on either side
    assert len(h.pairs()) == 1
    h.sf.touch(sf_old)  # Salesforce's side leaves the window too: both ids stay on the link
    assert h.sync().changes == 0
    assert len(h.state.links("event")) == 2 and len(h.pairs()) == 1
    h.mb.edit(old, {"start": "2026-03-10T09:00:00Z"})  # moved into the window in the mailbox
    result = h.sync()  # its partner is still out of scope: no copy is made, nothing is written
    assert result.changes == 0 and len(h.sf.items) == 2
    h.sf.edit(sf_old, {"start": "2026-03-11T09:00:00Z"})  # and in Salesforce: the pair merges
    h.sync()
    assert (old, sf_old) in h.pairs()
    assert h.mb.values(old)["start"] == h.sf.values(sf_old)["start"]
    h.assert_quiet()


def test_a_full_listing_tells_out_of_scope_from_deleted(harness: Harness) -> None:
    h = harness
    a = h.mb.add(contact("A", "A", "a@x.io"))
    b = h.mb.add(contact("B", "B", "b@x.io"))
    h.sync()
    with h.state.transaction() as conn:
        conn.execute("DELETE FROM cursors")
    h.mb.scope = lambda f: f.get("email") != "a@x.io"  # moved out of the folder
    h.mb.remove(b)  # really deleted
    result = h.sync()
    assert result.counts["salesforce"].deleted == 0  # propagation is off: b's copy unlinks
    assert len(h.sf.items) == 2
    assert a in h.mb.items
    states = sorted(link.state for link in h.state.links("contact"))
    assert states == ["mailbox_detached", "mailbox_detached"]
    h.mb.scope = lambda f: True
    h.mb.touch(a)  # back in the folder: re-attached to its Salesforce contact, not duplicated
    result = h.sync()
    assert result.counts["salesforce"].created == 0
    assert len(h.pairs()) == 1
    h.assert_quiet()


def test_a_contact_back_in_scope_reattaches_by_id_and_merges(harness: Harness) -> None:
    h = harness
    s = h.sf.add({"first_name": "No", "last_name": "Email", "notes": "k"})  # no match key
    h.sync()
    m = h.pairs()[0][0]
    h.sf.scope = lambda f: f.get("title") != "hidden"
    h.sf.edit(s, {"title": "hidden"})  # e.g. reassigned to another owner: out of "my contacts"
    assert h.sync().changes == 0
    assert m in h.mb.items  # the mailbox copy stays
    h.mb.edit(m, {"phone": "5"})  # edited while its partner is out of scope
    h.sf.edit(s, {"title": "back"})
    result = h.sync()
    assert result.counts["mailbox"].created == 0 and result.counts["salesforce"].created == 0
    assert h.pairs() == [(m, s)]
    assert h.sf.values(s)["phone"] == "5" and h.mb.values(m)["title"] == "back"
    h.assert_quiet()


def test_an_out_of_scope_partner_keeps_its_claim(harness: Harness) -> None:
    h = harness
    h.mb.scope = lambda f: f.get("mobile") != "moved"
    m1 = h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))
    h.sync()
    s = h.pairs()[0][1]
    h.mb.edit(m1, {"mobile": "moved"})  # moved out of the folder: set aside, still exists
    h.sync()
    m2 = h.mb.add(contact("Ada", "Lovelace", "ada@example.com"))  # a second contact, same email
    h.sync()
    assert (m2, s) not in h.pairs()  # s still belongs to m1
    h.mb.edit(m1, {"mobile": None})  # back in the folder
    h.sync()
    assert (m1, s) in h.pairs() and len(h.pairs()) == 2
    h.assert_converged()
    h.assert_quiet()
