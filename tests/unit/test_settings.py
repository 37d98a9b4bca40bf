from pathlib import Path

import pytest

from scc_desktop.settings import (
    SETTINGS,
    Group,
    InvalidValue,
    Kind,
    Policy,
    SettingLocked,
    Settings,
    UnknownSetting,
    parse_value,
    setting,
)


class DictStorage:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def load_all(self) -> dict[str, str]:
        return dict(self.data)

    def save(self, key: str, text: str) -> None:
        self.data[key] = text


def test_declarations_cover_the_dashboard() -> None:
    keys = {s.key for s in SETTINGS}
    switches = {s.key for s in SETTINGS if s.switch}
    assert switches == {
        "email_autoshare",
        "email_thread_autosave",
        "email_link_opportunities",
        "meetings_autoshare",
        "appointments_autoshare",
    }
    for required in (
        "blacklist",
        "contacts_direction",
        "contacts_conflict",
        "calendar_direction",
        "calendar_conflict",
        "tasks_direction",
        "tasks_conflict",
        "calendar_days_back",
        "calendar_days_ahead",
        "sync_private_items",
        "save_emails_as",
        "attachments_as",
        "attachment_max_mb",
        "calendar_items_as_tasks",
        "show_sf_tasks_in_calendar",
        "sync_interval_minutes",
        "start_at_login",
    ):
        assert required in keys
    assert len(keys) == len(SETTINGS)
    for decl in SETTINGS:
        assert decl.label and decl.help and isinstance(decl.group, Group)
        # every default passes its own validation
        assert parse_value(decl, decl.default) == decl.default


@pytest.mark.parametrize("text", ["true", "on", "yes", "1", "TRUE", " On "])
def test_true_words(text: str) -> None:
    assert parse_value(setting("email_autoshare"), text) is True


@pytest.mark.parametrize("text", ["false", "off", "no", "0", "Off"])
def test_false_words(text: str) -> None:
    assert parse_value(setting("email_autoshare"), text) is False


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("email_autoshare", "maybe"),
        ("sync_interval_minutes", "0"),
        ("sync_interval_minutes", "ten"),
        ("sync_interval_minutes", "241"),
        ("contacts_direction", "sideways"),
        ("blacklist", "*.spam.com"),
        ("contacts_filter", "Name = 'x'; DELETE"),
    ],
)
def test_bad_values_are_refused(key: str, raw: str) -> None:
    with pytest.raises(InvalidValue):
        parse_value(setting(key), raw)


def test_unknown_key() -> None:
    with pytest.raises(UnknownSetting, match="settings list"):
        setting("nope")


def test_set_persists_canonical_text_and_survives_reload() -> None:
    storage = DictStorage()
    settings = Settings(storage)
    assert settings.set("blacklist", "Gmail.com;  Bob@Example.COM") == "gmail.com, bob@example.com"
    settings.set("email_autoshare", "yes")
    assert storage.data == {"blacklist": "gmail.com, bob@example.com", "email_autoshare": "true"}
    again = Settings(storage)
    assert again.get("email_autoshare") is True
    assert again.get("blacklist") == "gmail.com, bob@example.com"


def test_refused_value_changes_nothing() -> None:
    storage = DictStorage()
    settings = Settings(storage)
    settings.set("blacklist", "gmail.com")
    with pytest.raises(InvalidValue):
        settings.set("blacklist", "gmail.com, *.spam.com")
    assert settings.get("blacklist") == "gmail.com"
    assert storage.data["blacklist"] == "gmail.com"


def test_a_corrupt_stored_value_falls_back_to_the_default() -> None:
    storage = DictStorage()
    storage.data["sync_interval_minutes"] = "banana"
    assert Settings(storage).get("sync_interval_minutes") == 10


def test_policy_locks_and_merges_corporate_blacklist(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(
        'reason = "Company policy: auto-sharing is mandatory."\n'
        "[locked]\nemail_autoshare = true\nsync_interval_minutes = 15\n"
        '[blacklist]\ncorporate = ["Competitor.example", "ceo@northwind.example"]\n'
        'internal_domains = ["northwind.example"]\n',
        encoding="utf-8",
    )
    policy = Policy.load(policy_file)
    assert policy.problems == ()
    storage = DictStorage()
    settings = Settings(storage, policy)
    assert settings.is_locked("email_autoshare")
    assert settings.get("email_autoshare") is True
    assert settings.get("sync_interval_minutes") == 15
    with pytest.raises(SettingLocked, match="Company policy"):
        settings.set("email_autoshare", "off")
    assert "email_autoshare" not in storage.data
    settings.set("blacklist", "gmail.com")
    snapshot = settings.snapshot()
    blacklist = snapshot.blacklist()
    assert blacklist.matches("x@gmail.com")
    assert blacklist.matches("sales@competitor.example")
    assert blacklist.matches("anyone@northwind.example")
    assert not blacklist.matches("jane.cooper@acme.example")
    # the user's own box never shows the corporate entries
    assert settings.get("blacklist") == "gmail.com"


def test_broken_policy_entries_are_reported_not_fatal(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(
        '[locked]\nemail_autoshare = "perhaps"\nno_such_key = 1\nstart_at_login = false\n'
        '[blacklist]\ncorporate = ["*.bad.example", "good.example"]\n',
        encoding="utf-8",
    )
    policy = Policy.load(policy_file)
    assert dict(policy.locked) == {"start_at_login": False}
    assert policy.corporate_blacklist == ("good.example",)
    assert len(policy.problems) == 3


def test_unreadable_policy_is_ignored_with_a_problem(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text("[locked\n", encoding="utf-8")
    policy = Policy.load(policy_file)
    assert policy.locked == {}
    assert policy.problems


def test_kinds_have_widgets_to_map_to() -> None:
    assert {s.kind for s in SETTINGS} <= set(Kind)


def test_a_pending_setting_is_refused_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    from scc_desktop import settings as module
    from scc_desktop.settings import SettingUnavailable

    # every declared setting works today: declare one pending to check the mechanism
    key = "show_sf_tasks_in_calendar"
    declared = dataclasses.replace(module.SETTINGS_BY_KEY[key], pending="Not available yet.")
    monkeypatch.setitem(module.SETTINGS_BY_KEY, key, declared)
    storage = DictStorage()
    settings = Settings(storage)
    with pytest.raises(SettingUnavailable, match="Not available yet"):
        settings.set(key, "on")
    assert storage.data == {}


def test_the_other_sync_adjustments_can_be_switched_on() -> None:
    storage = DictStorage()
    settings = Settings(storage)
    assert not [s.key for s in SETTINGS if s.pending]
    for key in ("calendar_items_as_tasks", "show_sf_tasks_in_calendar"):
        assert settings.set(key, "on") is True
        assert settings.get(key) is True
