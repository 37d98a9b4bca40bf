"""The mass-deletion guard: more than 10 deletes and more than 20 % of the linked items stops the
kind, deletes nothing, asks in Sync Issues, and Allow / Restore answer it."""

from __future__ import annotations

from sync_harness import Harness

from scc_desktop.sync.guard import GuardVerdict, check_mass_delete
from scc_desktop.sync.planner import Action, LinkChange, Op

DELETE = Action(Op.NONE, Op.DELETE, LinkChange.DROP)
KEEP = Action(Op.NONE, Op.NONE, LinkChange.KEEP)


def test_thresholds() -> None:
    assert check_mass_delete([DELETE] * 10, 10) is GuardVerdict.CLEAR  # not more than 10
    assert check_mass_delete([DELETE] * 11, 40) is GuardVerdict.TRIPPED  # 27 %
    assert check_mass_delete([DELETE] * 11, 55) is GuardVerdict.CLEAR  # exactly 20 %
    assert check_mass_delete([DELETE] * 12, 55) is GuardVerdict.TRIPPED
    assert check_mass_delete([DELETE] * 11 + [KEEP] * 100, 100) is GuardVerdict.CLEAR


def synced(h: Harness, n: int) -> list[tuple[str, str]]:
    for i in range(n):
        h.mb.add({"first_name": "C", "last_name": f"{i}", "email": f"c{i}@example.com"})
    h.sync()
    return h.pairs()


def test_thirty_of_forty_deleted_in_the_mailbox_stops_and_asks(harness: Harness) -> None:
    h = harness
    h.set(propagate_mailbox_deletes=True)
    pairs = synced(h, 40)
    for m, _ in pairs[:30]:
        h.mb.remove(m)
    result = h.sync()
    assert result.stopped
    assert result.changes == 0
    assert len(h.sf.items) == 40  # nothing deleted in Salesforce
    assert h.sf.calls["delete"] == 0
    (issue,) = h.state.open_issues("contact", "mass_delete")
    assert "30" in issue.title
    assert len(issue.payload["deletes"]) == 30  # type: ignore[arg-type]
    summary = h.session()  # asking again does not pile up prompts
    assert summary["status"] == "partial" and summary["needs_attention"] is True
    assert len(h.state.open_issues("contact", "mass_delete")) == 1
    assert len(h.sf.items) == 40


def test_allow_applies_the_deletions_once(harness: Harness) -> None:
    h = harness
    h.set(propagate_mailbox_deletes=True)
    pairs = synced(h, 40)
    for m, _ in pairs[:30]:
        h.mb.remove(m)
    h.sync()
    (issue,) = h.state.open_issues("contact", "mass_delete")
    h.state.resolve_issue(issue.id, "allow")
    result = h.sync()
    assert not result.stopped
    assert result.counts["salesforce"].deleted == 30
    assert len(h.sf.items) == 10
    h.assert_quiet()


def test_restore_recreates_the_deleted_copies(harness: Harness) -> None:
    h = harness
    pairs = synced(h, 40)
    for _, s in pairs[:25]:
        h.sf.remove(s)  # Salesforce deletions would remove the mailbox copies
    assert h.sync().stopped
    assert len(h.mb.items) == 40
    (issue,) = h.state.open_issues("contact", "mass_delete")
    h.state.resolve_issue(issue.id, "restore")
    result = h.sync()
    assert result.counts["salesforce"].created == 25
    assert len(h.sf.items) == 40 and len(h.mb.items) == 40
    h.assert_converged()
    h.assert_quiet()


def test_unlinking_is_not_deleting(harness: Harness) -> None:
    h = harness  # propagation off: mailbox deletions only detach
    pairs = synced(h, 40)
    for m, _ in pairs[:30]:
        h.mb.remove(m)
    result = h.sync()
    assert not result.stopped
    assert len(h.sf.items) == 40


def test_a_prompt_that_no_longer_applies_is_closed(harness: Harness) -> None:
    h = harness
    pairs = synced(h, 40)
    removed = {}
    for _, s in pairs[:12]:
        removed[s] = h.sf.values(s)
        h.sf.remove(s)
    assert h.sync().stopped
    # the user fixes it in Salesforce (say, a scope change undone): the items come back
    for values in removed.values():
        h.sf.add(values)
    # the lost links still describe deleted ids, so the guard trips again until answered
    assert h.sync().stopped
    (issue,) = h.state.open_issues("contact", "mass_delete")
    h.state.resolve_issue(issue.id, "allow")
    result = h.sync()
    # the old copies go, the re-added records come in as new ones: nothing lost, nothing doubled
    assert result.counts["mailbox"].deleted == 12 and result.counts["mailbox"].created == 12
    assert len(h.mb.items) == 40
    h.assert_converged()
    assert h.state.open_issues("contact", "mass_delete") == []
    h.assert_quiet()
