"""The email sharing rules as a table: one row per rule of the product page, plus properties."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scc_desktop.settings import SETTINGS, SettingsSnapshot, Value
from scc_desktop.sync.email_rules import (
    EmailContext,
    EmailDecision,
    MailMessage,
    ManualSave,
    Opportunity,
    Participant,
    PersonRecord,
    Relation,
    SalesforceLookup,
    ThreadMark,
    address_key,
    decide_email,
    idempotency_key,
)

NOW = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
ENABLED = NOW - timedelta(days=30)  # when auto-sharing was turned on
RECENT = NOW - timedelta(hours=1)
ME_ID = "005000000000001AAA"
OTHER_OWNER = "005000000000002AAA"

ME = "me@acme.example"
COLLEAGUE = "colleague@acme.example"
ANN = "ann@globex.example"
TOM = "tom.o'neil@globex.example"
BOB = "bob@initech.example"
LEA = "lea@hooli.example"
LIV = "liv@hooli.example"
CARL = "carl@nowhere.example"  # a Contact with no account
CONTRACTOR = "sam@partner.example"  # an active User outside the company's domains
SUBSIDIARY = "sue@acme-labs.example"
STRANGER = "stranger@unknown.example"
IDN = "jan@xn--bcher-kva.example"  # jan@bücher.example

C_ANN, C_TOM, C_BOB, C_CARL, C_SUE, C_ME = (
    "003000000000001AAA",
    "003000000000002AAA",
    "003000000000003AAA",
    "003000000000004AAA",
    "003000000000005AAA",
    "003000000000006AAA",
)
C_JAN = "003000000000007AAA"
L_LEA, L_LIV = "00Q000000000001AAA", "00Q000000000002AAA"
U_COLLEAGUE, U_CONTRACTOR = "005000000000003AAA", "005000000000004AAA"
A_GLOBEX, A_INITECH, A_BUCHER = "001000000000001AAA", "001000000000002AAA", "001000000000003AAA"
RELATED = "006000000000099AAA"

PEOPLE = (
    PersonRecord(C_ANN, "Contact", ANN, A_GLOBEX),
    PersonRecord(C_TOM, "Contact", "Tom.O'Neil@Globex.example", A_GLOBEX),
    PersonRecord(C_BOB, "Contact", BOB, A_INITECH),
    PersonRecord(C_CARL, "Contact", CARL, None),
    PersonRecord(C_SUE, "Contact", SUBSIDIARY, A_GLOBEX),
    PersonRecord(C_ME, "Contact", ME, A_GLOBEX),
    PersonRecord(C_JAN, "Contact", IDN, A_BUCHER),
    PersonRecord(L_LEA, "Lead", LEA),
    PersonRecord(L_LIV, "Lead", LIV),
    PersonRecord(U_COLLEAGUE, "User", COLLEAGUE),
    PersonRecord(U_CONTRACTOR, "User", CONTRACTOR),
)


def opp(
    opp_id: str,
    account: str = A_GLOBEX,
    *,
    closed: bool = False,
    modified_days_ago: int = 10,
    close: date | None = None,
    owner: str = ME_ID,
) -> Opportunity:
    return Opportunity(
        opp_id,
        account,
        owner,
        closed,
        NOW - timedelta(days=modified_days_ago),
        close,
        NOW - timedelta(days=100),
    )


def snapshot(
    overrides: Mapping[str, Value] | None = None,
    corporate: tuple[str, ...] = (),
    internal: tuple[str, ...] = (),
) -> SettingsSnapshot:
    values: dict[str, Value] = {s.key: s.default for s in SETTINGS}
    values.update(overrides or {})
    return SettingsSnapshot(values, corporate, internal)


def p(*addresses: str) -> tuple[Participant, ...]:
    return tuple(Participant(a, a.split("@")[0].title()) for a in addresses)


def message(
    sender: tuple[str, ...] = (ANN,),
    to: tuple[str, ...] = (ME,),
    cc: tuple[str, ...] = (),
    *,
    direction: str = "inbound",
    when: datetime = RECENT,
    manual: ManualSave | None = None,
    message_id: str | None = "<abc.123@mail.globex.example>",
    conversation: str | None = "conv-1",
    subject: str = "Quote for Q4",
) -> MailMessage:
    return MailMessage(
        message_id=message_id,
        conversation_id=conversation,
        direction="inbound" if direction == "inbound" else "outbound",
        sender=p(*sender),
        to=p(*to),
        cc=p(*cc),
        subject=subject,
        sent_at=when - timedelta(seconds=5),
        received_at=when,
        manual=manual,
    )


@dataclass(frozen=True)
class Case:
    name: str
    message: MailMessage
    expect: Mapping[str, Any]
    settings: Mapping[str, Value] = field(default_factory=dict)
    corporate: tuple[str, ...] = ()
    internal: tuple[str, ...] = ()
    opportunities: tuple[Opportunity, ...] = ()
    enhanced: bool = False
    enabled_at: datetime | None = ENABLED
    first_enabling: bool = False
    marks: tuple[ThreadMark, ...] = ()


AUTO = {"email_autoshare": True}
OPPS = {"email_autoshare": True, "email_link_opportunities": True}
THREADS = {"email_thread_autosave": True}
MARK = ThreadMark("conv-1", NOW - timedelta(days=2))

NOT_SHARED: Mapping[str, Any] = {"share": False, "who_ids": (), "what_id": None}

CASES = [
    # --- Enable Auto-Sharing ---------------------------------------------------------------------
    Case(
        "autoshare_on_inbound_contact_shared",
        message(),
        {"share": True, "code": "autoshare", "path": "autoshare", "who_ids": (C_ANN,)},
        AUTO,
    ),
    Case(
        "autoshare_on_outbound_contact_shared",
        message((ME,), (BOB,), direction="outbound"),
        {"share": True, "who_ids": (C_BOB,), "what_id": None, "unresolved": False},
        AUTO,
    ),
    Case(
        "autoshare_off_not_shared",
        message(),
        {**NOT_SHARED, "code": "autoshare_off", "reason": "auto-sharing is off"},
    ),
    Case(
        "autoshare_no_contact_or_lead_not_shared",
        message((STRANGER,)),
        {**NOT_SHARED, "code": "no_match", "reason": "no participant is a Contact or Lead"},
        AUTO,
    ),
    Case(
        "autoshare_user_only_is_no_match",
        message((CONTRACTOR,)),
        {**NOT_SHARED, "code": "no_match", "user_ids": ()},
        AUTO,
    ),
    Case(
        "autoshare_cc_contact_linked",
        message((STRANGER,), (ME,), (BOB,)),
        {"share": True, "who_ids": (C_BOB,)},
        AUTO,
    ),
    Case(
        "who_ids_in_from_to_cc_order",
        message((BOB,), (ME, ANN), (TOM,)),
        {"share": True, "who_ids": (C_BOB, C_ANN, C_TOM)},
        AUTO,
    ),
    Case(
        "lead_linked_alone_when_no_contact",
        message((LEA,), (ME, LIV)),
        {"share": True, "who_ids": (L_LEA,), "what_id": None},
        AUTO,
    ),
    Case(
        "contacts_win_over_a_lead_sender",
        message((LEA,), (ME, ANN)),
        {"share": True, "who_ids": (C_ANN,)},
        AUTO,
    ),
    # --- blacklist and internal participants -----------------------------------------------------
    Case(
        "blacklist_by_domain_in_user_box",
        message((ANN,), (ME,), (TOM,)),
        {
            **NOT_SHARED,
            "code": "only_excluded",
            "reason": "only blacklisted or internal participants",
        },
        {**AUTO, "blacklist": "globex.example"},
    ),
    Case(
        "blacklist_by_address_keeps_same_domain_colleague",
        message((ANN,), (ME,), (TOM,)),
        {"share": True, "who_ids": (C_TOM,)},
        {**AUTO, "blacklist": "Ann@Globex.example"},
    ),
    Case(
        "user_box_and_corporate_list_both_apply",
        message((ANN,), (ME, BOB), (LEA,)),
        {"share": True, "who_ids": (L_LEA,)},
        {**AUTO, "blacklist": "initech.example"},
        corporate=("globex.example",),
    ),
    Case(
        "corporate_list_alone_blocks",
        message((BOB,)),
        {**NOT_SHARED, "code": "only_excluded"},
        AUTO,
        corporate=("bob@initech.example",),
    ),
    Case(
        "several_senders_one_blacklisted_still_linked_to_the_other",
        message((ANN, BOB), (ME,)),
        {"share": True, "who_ids": (C_BOB,)},
        {**AUTO, "blacklist": "ann@globex.example"},
    ),
    Case(
        "blacklisted_contact_plus_stranger_is_only_excluded",
        message((ANN,), (ME, STRANGER)),
        {**NOT_SHARED, "code": "only_excluded"},
        {**AUTO, "blacklist": "globex.example"},
    ),
    Case(
        "internal_only_not_shared",
        message((COLLEAGUE,), (ME,)),
        {**NOT_SHARED, "code": "only_excluded", "user_ids": ()},
        AUTO,
    ),
    Case(
        "policy_internal_domain_never_linked",
        message((SUBSIDIARY,), (ME,)),
        {**NOT_SHARED, "code": "only_excluded"},
        AUTO,
        internal=("acme-labs.example",),
    ),
    Case(
        "own_address_that_is_also_a_contact_not_linked",
        message((ME,), (BOB,), direction="outbound"),
        {"share": True, "who_ids": (C_BOB,)},
        AUTO,
    ),
    Case(
        "colleague_user_on_thread_not_related",
        message((ANN,), (ME,), (COLLEAGUE,)),
        {"share": True, "who_ids": (C_ANN,), "user_ids": ()},
        AUTO,
    ),
    Case(
        "external_user_related_not_linked_as_who",
        message((ANN,), (ME,), (CONTRACTOR,)),
        {
            "share": True,
            "who_ids": (C_ANN,),
            "user_ids": (U_CONTRACTOR,),
            "relations": (
                Relation(C_ANN, "Contact", "from", ANN),
                Relation(U_CONTRACTOR, "User", "cc", CONTRACTOR),
            ),
        },
        AUTO,
        enhanced=True,
    ),
    # --- addresses -----------------------------------------------------------------------------
    Case(
        "upper_case_address_matches",
        message(("ANN@GLOBEX.EXAMPLE",)),
        {"share": True, "who_ids": (C_ANN,)},
        AUTO,
    ),
    Case(
        "idn_address_matches_punycode_contact",
        message(("Jan@Bücher.example",)),
        {"share": True, "who_ids": (C_JAN,)},
        AUTO,
    ),
    Case(
        "idn_blacklist_entry_blocks_punycode_address",
        message((IDN,)),
        {**NOT_SHARED, "code": "only_excluded"},
        {**AUTO, "blacklist": "bücher.example"},
    ),
    Case(
        "address_with_a_quote_matches",
        message((TOM,)),
        {"share": True, "who_ids": (C_TOM,)},
        AUTO,
    ),
    Case(
        "address_with_a_quote_blacklisted",
        message((TOM,), (ME,), (ANN,)),
        {"share": True, "who_ids": (C_ANN,)},
        {**AUTO, "blacklist": "tom.o'neil@globex.example"},
    ),
    # --- time -------------------------------------------------------------------------------------
    Case(
        "before_autoshare_was_enabled_not_shared",
        message(when=ENABLED - timedelta(hours=1)),
        {**NOT_SHARED, "code": "before_enabled", "reason": "before auto-sharing was enabled"},
        AUTO,
    ),
    Case(
        "first_enabling_takes_history_window",
        message(when=ENABLED - timedelta(days=5)),
        {"share": True, "who_ids": (C_ANN,)},
        AUTO,
        first_enabling=True,
    ),
    Case(
        "first_enabling_older_than_history_window_not_shared",
        message(when=ENABLED - timedelta(days=6, seconds=1)),
        {**NOT_SHARED, "code": "before_enabled"},
        AUTO,
        first_enabling=True,
    ),
    Case(
        "history_window_is_a_setting",
        message(when=ENABLED - timedelta(days=9)),
        {"share": True},
        {**AUTO, "email_history_days": 10},
        first_enabling=True,
    ),
    Case(
        "unknown_enabling_moment_counts_as_now",
        message(when=NOW - timedelta(days=7)),
        {**NOT_SHARED, "code": "before_enabled"},
        AUTO,
        enabled_at=None,
        first_enabling=True,
    ),
    # --- Link to Opportunities -------------------------------------------------------------------
    Case(
        "link_opportunities_off_no_what",
        message(),
        {"share": True, "what_id": None},
        AUTO,
        opportunities=(opp("006A"),),
    ),
    Case(
        "link_opportunities_open_beats_newer_closed",
        message(),
        {"share": True, "what_id": "006OPEN", "what_source": "opportunity", "who_ids": (C_ANN,)},
        OPPS,
        opportunities=(
            opp("006CLOSED", closed=True, modified_days_ago=1),
            opp("006OPEN", modified_days_ago=40),
        ),
    ),
    Case(
        "link_opportunities_latest_modified_wins",
        message(),
        {"share": True, "what_id": "006NEW"},
        OPPS,
        opportunities=(opp("006OLD", modified_days_ago=9), opp("006NEW", modified_days_ago=2)),
    ),
    Case(
        "link_opportunities_close_date_breaks_a_tie",
        message(),
        {"share": True, "what_id": "006LATER"},
        OPPS,
        opportunities=(
            opp("006LATER", close=date(2027, 3, 1)),
            opp("006SOONER", close=date(2027, 1, 1)),
        ),
    ),
    Case(
        "link_opportunities_all_closed_most_recent",
        message(),
        {"share": True, "what_id": "006B"},
        OPPS,
        opportunities=(
            opp("006A", closed=True, modified_days_ago=5),
            opp("006B", closed=True, modified_days_ago=3),
        ),
    ),
    Case(
        "link_opportunities_others_opportunity_ignored_account_used",
        message(),
        {"share": True, "what_id": A_GLOBEX, "what_source": "account"},
        OPPS,
        opportunities=(opp("006THEIRS", owner=OTHER_OWNER),),
    ),
    Case(
        "link_opportunities_15_char_owner_id_matches",
        message(),
        {"share": True, "what_id": "006MINE"},
        OPPS,
        opportunities=(opp("006MINE", owner=ME_ID[:15]),),
    ),
    Case(
        "link_opportunities_no_opportunity_but_account",
        message((BOB,)),
        {"share": True, "what_id": A_INITECH, "what_source": "account", "who_ids": (C_BOB,)},
        OPPS,
        opportunities=(opp("006GLOBEX"),),
    ),
    Case(
        "link_opportunities_neither_not_shared",
        message((CARL,)),
        {
            **NOT_SHARED,
            "code": "no_opportunity_or_account",
            "reason": "Link to Opportunities: no opportunity or account",
        },
        OPPS,
    ),
    Case(
        "link_opportunities_lead_only_not_shared",
        message((LEA,)),
        {**NOT_SHARED, "code": "no_opportunity_or_account"},
        OPPS,
    ),
    Case(
        "link_opportunities_account_of_first_contact_with_one",
        message((CARL,), (ME, BOB), (ANN,)),
        {"share": True, "what_id": A_INITECH, "who_ids": (C_CARL, C_BOB, C_ANN)},
        OPPS,
    ),
    Case(
        "link_opportunities_blacklisted_contact_lends_no_opportunity",
        message((ANN,), (ME, BOB)),
        {"share": True, "what_id": "006INITECH", "who_ids": (C_BOB,)},
        {**OPPS, "blacklist": "globex.example"},
        opportunities=(opp("006GLOBEX", modified_days_ago=1), opp("006INITECH", A_INITECH)),
    ),
    Case(
        "link_opportunities_not_applied_to_manual_save",
        message(manual=ManualSave()),
        {"share": True, "path": "manual", "what_id": None, "who_ids": (C_ANN,)},
        OPPS,
        opportunities=(opp("006A"),),
    ),
    # --- Auto-Save All Emails In Threads -------------------------------------------------------
    Case(
        "thread_autosave_with_autoshare_off",
        message(),
        {"share": True, "code": "thread", "path": "thread", "who_ids": (C_ANN,)},
        THREADS,
        marks=(MARK,),
    ),
    Case(
        "thread_switch_off_keeps_mark_unused",
        message(),
        {**NOT_SHARED, "code": "autoshare_off"},
        marks=(MARK,),
    ),
    Case(
        "thread_unmarked_conversation_not_saved",
        message(conversation="conv-2"),
        {**NOT_SHARED, "code": "autoshare_off"},
        THREADS,
        marks=(MARK,),
    ),
    Case(
        "thread_blacklisted_only_later_message_not_saved",
        message((ANN,), (ME, COLLEAGUE)),
        {**NOT_SHARED, "code": "only_excluded"},
        {**THREADS, "blacklist": "globex.example"},
        marks=(MARK,),
    ),
    Case(
        "thread_internal_only_later_message_not_saved",
        message((COLLEAGUE,), (ME,)),
        {**NOT_SHARED, "code": "only_excluded"},
        THREADS,
        marks=(MARK,),
    ),
    Case(
        "thread_message_before_mark_not_saved",
        message(when=MARK.since - timedelta(minutes=1)),
        {**NOT_SHARED, "code": "autoshare_off"},
        THREADS,
        marks=(MARK,),
    ),
    Case(
        "thread_inherits_related_to_over_opportunity",
        message(),
        {"share": True, "what_id": RELATED, "what_source": "related_to", "who_ids": (C_ANN,)},
        {**THREADS, **OPPS},
        opportunities=(opp("006A"),),
        marks=(replace(MARK, related_to_id=RELATED),),
    ),
    Case(
        "thread_saves_without_opportunity_or_account",
        message((LEA,)),
        {"share": True, "code": "thread", "who_ids": (L_LEA,), "what_id": None},
        {**THREADS, **OPPS},
        marks=(MARK,),
    ),
    Case(
        "thread_unmatched_message_saved_unresolved",
        message((STRANGER,)),
        {"share": True, "code": "thread", "who_ids": (), "unresolved": True},
        THREADS,
        marks=(MARK,),
    ),
    # --- manual saving ----------------------------------------------------------------------------
    Case(
        "manual_save_with_autoshare_off",
        message(manual=ManualSave("category")),
        {"share": True, "code": "manual", "who_ids": (C_ANN,), "unresolved": False},
    ),
    Case(
        "manual_save_ignores_blacklist",
        message((ANN,), (ME, COLLEAGUE), manual=ManualSave()),
        {"share": True, "who_ids": (C_ANN,)},
        {"blacklist": "globex.example"},
        corporate=("ann@globex.example",),
    ),
    Case(
        "manual_unmatched_saved_unresolved",
        message((STRANGER,), manual=ManualSave()),
        {
            "share": True,
            "code": "manual_unresolved",
            "who_ids": (),
            "what_id": None,
            "unresolved": True,
        },
    ),
    Case(
        "manual_internal_only_saved_unlinked",
        message((COLLEAGUE,), (ME,), manual=ManualSave()),
        {"share": True, "who_ids": (), "user_ids": (), "unresolved": True},
    ),
    Case(
        "manual_related_to_wins_for_what",
        message(manual=ManualSave("window", related_to_id=RELATED)),
        {"share": True, "what_id": RELATED, "what_source": "related_to", "who_ids": (C_ANN,)},
        OPPS,
        opportunities=(opp("006A"),),
    ),
    Case(
        "manual_related_to_drops_a_lead",
        message((LEA,), manual=ManualSave("window", related_to_id=RELATED)),
        {"share": True, "who_ids": (), "what_id": RELATED, "unresolved": False},
    ),
    Case(
        "manual_unmatched_with_related_to_is_resolved",
        message((STRANGER,), manual=ManualSave("window", related_to_id=RELATED)),
        {"share": True, "code": "manual", "unresolved": False},
    ),
    Case(
        "manual_folder_marks_thread_while_switch_on",
        message(manual=ManualSave("folder")),
        {"mark_thread": ThreadMark("conv-1", RECENT, None), "unmark_thread": None},
        THREADS,
    ),
    Case(
        "manual_folder_does_not_mark_while_switch_off",
        message(manual=ManualSave("folder")),
        {"share": True, "mark_thread": None},
    ),
    Case(
        "manual_window_checkbox_marks_with_related_to",
        message(manual=ManualSave("window", RELATED, autosave_thread=True)),
        {"mark_thread": ThreadMark("conv-1", RECENT, RELATED)},
        THREADS,
    ),
    Case(
        "manual_window_unchecked_unmarks_a_marked_thread",
        message(manual=ManualSave("window", autosave_thread=False)),
        {"share": True, "mark_thread": None, "unmark_thread": "conv-1"},
        THREADS,
        marks=(MARK,),
    ),
    Case(
        "manual_without_conversation_marks_nothing",
        message(manual=ManualSave("window", autosave_thread=True), conversation=None),
        {"share": True, "mark_thread": None},
        THREADS,
    ),
    # --- Enhanced Email and the target ----------------------------------------------------------
    Case("target_auto_without_enhanced_email_is_task", message(), {"target": "task"}, AUTO),
    Case(
        "target_auto_with_enhanced_email_is_email_message",
        message(),
        {"target": "email_message"},
        AUTO,
        enhanced=True,
    ),
    Case(
        "target_task_forced_with_enhanced_email",
        message(),
        {"target": "task"},
        {**AUTO, "save_emails_as": "task"},
        enhanced=True,
    ),
    Case(
        "target_email_message_forced_without_enhanced_email",
        message(),
        {"target": "email_message"},
        {**AUTO, "save_emails_as": "email_message"},
    ),
    Case(
        "email_message_many_whos_one_what",
        message((ANN,), (ME, BOB), (LEA,)),
        {
            "target": "email_message",
            "who_ids": (C_ANN, C_BOB),
            "what_id": "006A",
            "relations": (
                Relation(C_ANN, "Contact", "from", ANN),
                Relation(C_BOB, "Contact", "to", BOB),
            ),
        },
        OPPS,
        opportunities=(opp("006A"),),
        enhanced=True,
    ),
]


def context_for(case: Case) -> EmailContext:
    return EmailContext.build(
        snapshot(case.settings, case.corporate, case.internal),
        salesforce_user_id=ME_ID,
        own_addresses=(ME.upper(),),
        enhanced_email=case.enhanced,
        autoshare_enabled_at=case.enabled_at,
        autoshare_first_enabling=case.first_enabling,
        marked_threads=case.marks,
    )


def decide(case: Case) -> EmailDecision:
    lookup = SalesforceLookup(PEOPLE, case.opportunities)
    return decide_email(case.message, lookup, context_for(case), NOW)


def test_the_table_is_big_and_names_are_unique() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rules(case: Case) -> None:
    decision = decide(case)
    actual = {name: getattr(decision, name) for name in case.expect}
    assert actual == dict(case.expect), decision.reason
    if not decision.share:
        assert decision.who_ids == () and decision.what_id is None and not decision.unresolved


# --- settings per call, idempotency key, inputs ------------------------------------------------


def test_a_new_snapshot_applies_at_the_next_call() -> None:
    base = Case("x", message(), {}, AUTO)
    assert decide(base).share
    assert not decide(replace(base, settings={**AUTO, "blacklist": "ann@globex.example"})).share
    assert not decide(replace(base, settings={})).share


def test_manual_and_automatic_paths_share_one_key() -> None:
    auto = decide(Case("a", message(), {}, AUTO))
    manual = decide(Case("m", message(manual=ManualSave("window", RELATED)), {}))
    assert auto.key == manual.key == "mid:abc.123@mail.globex.example"


def test_message_id_is_normalized() -> None:
    spaced = message(message_id="  <ABC.123@Mail.Globex.Example>\r\n ")
    assert idempotency_key(spaced) == idempotency_key(message())
    assert idempotency_key(message(message_id="<other@x.example>")) != idempotency_key(message())


def test_very_long_message_id_is_hashed() -> None:
    key = idempotency_key(message(message_id="<" + "a" * 300 + "@x.example>"))
    assert key.startswith("mid-sha256:") and len(key) < 100


def test_missing_message_id_falls_back_to_a_stable_hash() -> None:
    first = message(message_id=None)
    again = replace(
        message(message_id="  ", manual=ManualSave()),
        sender=p("ANN@globex.example"),
        subject="Quote  for\tQ4",
        sent_at=(RECENT - timedelta(seconds=5)).astimezone(timezone(timedelta(hours=2))),
    )
    assert idempotency_key(first) == idempotency_key(again)
    assert idempotency_key(first).startswith("sha256:")
    assert idempotency_key(first) == (
        "sha256:"
        + hashlib.sha256(
            f"{ANN}\n{(RECENT - timedelta(seconds=5)).isoformat()}\nQuote for Q4".encode()
        ).hexdigest()
    )
    assert idempotency_key(replace(first, subject="Other")) != idempotency_key(first)
    assert idempotency_key(message(message_id=None, when=NOW)) != idempotency_key(first)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(message(), received_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="sent or a received"):
        replace(message(), sent_at=None, received_at=None)
    with pytest.raises(ValueError, match="now"):
        decide_email(message(), SalesforceLookup(), context_for(CASES[0]), datetime(2026, 1, 1))


def test_outbound_mail_is_dated_by_sending() -> None:
    sent = ENABLED - timedelta(minutes=1)
    msg = replace(
        message((ME,), (BOB,), direction="outbound"),
        sent_at=sent,
        received_at=ENABLED + timedelta(minutes=1),
    )
    assert msg.when == sent
    assert decide(Case("o", msg, {}, AUTO)).code == "before_enabled"


def test_own_domain_is_internal_but_public_mail_domains_are_not() -> None:
    ctx = EmailContext.build(
        snapshot(),
        salesforce_user_id=ME_ID,
        own_addresses=("me@acme.example", "me.private@Gmail.com"),
        enhanced_email=False,
    )
    assert ctx.internal_domains == {"acme.example"}
    assert ctx.own_addresses == {"me@acme.example", "me.private@gmail.com"}
    assert ctx.blacklist.matches("anyone@ACME.example")
    assert not ctx.blacklist.matches("friend@gmail.com")


def test_address_key_tolerates_non_ascii_local_parts() -> None:
    assert address_key("Jörg@Bücher.example") == "jörg@xn--bcher-kva.example"
    assert address_key("ANN@GLOBEX.EXAMPLE") == ANN


# --- properties ----------------------------------------------------------------------------------

POOL = (ME, COLLEAGUE, ANN, TOM, BOB, LEA, LIV, CARL, CONTRACTOR, SUBSIDIARY, STRANGER, IDN)
BLACKLISTABLE = ("globex.example", BOB, "hooli.example", CONTRACTOR, "xn--bcher-kva.example")
OPPORTUNITIES = (
    opp("006A"),
    opp("006B", closed=True, modified_days_ago=1),
    opp("006C", A_INITECH, modified_days_ago=3),
    opp("006D", A_INITECH, owner=OTHER_OWNER),
)

addresses = st.lists(st.sampled_from(POOL), max_size=4).map(tuple)
manual_saves = st.none() | st.builds(
    ManualSave,
    st.sampled_from(("folder", "category", "window")),
    st.none() | st.just(RELATED),
    st.none() | st.booleans(),
)


@st.composite
def scenarios(draw: st.DrawFn) -> Case:
    msg = message(
        draw(addresses.filter(bool)),
        draw(addresses),
        draw(addresses),
        direction=draw(st.sampled_from(("inbound", "outbound"))),
        when=NOW - timedelta(hours=draw(st.integers(0, 24 * 60))),
        manual=draw(manual_saves),
        message_id=draw(st.none() | st.just("<m@x.example>")),
    )
    flags: dict[str, Value] = {
        key: draw(st.booleans())
        for key in ("email_autoshare", "email_thread_autosave", "email_link_opportunities")
    }
    flags["save_emails_as"] = draw(st.sampled_from(("auto", "task", "email_message")))
    flags["blacklist"] = ", ".join(draw(st.lists(st.sampled_from(BLACKLISTABLE), unique=True)))
    return Case(
        "property",
        msg,
        {},
        flags,
        corporate=tuple(draw(st.lists(st.sampled_from(BLACKLISTABLE), max_size=2))),
        internal=draw(st.sampled_from(((), ("acme-labs.example",)))),
        opportunities=tuple(draw(st.permutations(OPPORTUNITIES))),
        enhanced=draw(st.booleans()),
        first_enabling=draw(st.booleans()),
        marks=draw(st.sampled_from(((), (MARK,), (replace(MARK, related_to_id=RELATED),)))),
    )


def excluded_ids(case: Case, *, blacklist_too: bool) -> set[str]:
    ctx = context_for(case)
    ids = set()
    for record in PEOPLE:
        key = address_key(record.email)
        domain = key.rpartition("@")[2]
        internal = key in ctx.own_addresses or domain in ctx.internal_domains
        if internal or (blacklist_too and ctx.blacklist.matches(key)):
            ids.add(record.id)
    return ids


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_excluded_people_are_never_linked(case: Case) -> None:
    decision = decide(case)
    linked = set(decision.who_ids) | set(decision.user_ids)
    automatic = case.message.manual is None
    assert not linked & excluded_ids(case, blacklist_too=automatic)
    assert {r.record_id for r in decision.relations} == linked


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_a_lead_is_always_linked_alone(case: Case) -> None:
    decision = decide(case)
    leads = [i for i in decision.who_ids if i.startswith("00Q")]
    if leads:
        assert decision.who_ids == tuple(leads[:1]) and decision.what_id is None


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_decisions_are_deterministic_and_ignore_lookup_order(case: Case, rnd: Any) -> None:
    first = decide(case)
    shuffled_people = list(PEOPLE)
    rnd.shuffle(shuffled_people)
    lookup = SalesforceLookup(tuple(shuffled_people), tuple(reversed(case.opportunities)))
    assert decide_email(case.message, lookup, context_for(case), NOW) == first
    assert decide(case) == first


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_key_and_manual_saving_do_not_depend_on_the_path(case: Case) -> None:
    automatic = decide(replace(case, message=replace(case.message, manual=None)))
    manual = decide(replace(case, message=replace(case.message, manual=ManualSave())))
    assert automatic.key == manual.key
    assert manual.share
    assert manual.unresolved == (not manual.who_ids and manual.what_id is None)
