import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from scc_desktop import __version__
from scc_desktop.cli import EXIT_OK, EXIT_REFUSED, main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_from_the_installed_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scc_desktop", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == f"scc-desktop {__version__}"
    assert __version__ != "0.0.0+unknown"


def test_blacklist_acceptance(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    profile = str(tmp_path / "p")
    code, _, err = run(
        capsys,
        "--profile",
        profile,
        "settings",
        "set",
        "blacklist",
        "gmail.com, Bob@Example.COM, *.spam.com, not an address",
    )
    assert code == EXIT_REFUSED
    assert "*.spam.com" in err and "not an address" in err
    assert "gmail.com'" not in err  # good entries are not named as errors
    code, out, _ = run(capsys, "--profile", profile, "settings", "get", "blacklist")
    assert (code, out) == (EXIT_OK, "\n")  # nothing changed
    code, _, _ = run(
        capsys, "--profile", profile, "settings", "set", "blacklist", "gmail.com, Bob@Example.COM"
    )
    assert code == EXIT_OK
    code, out, _ = run(capsys, "--profile", profile, "settings", "get", "blacklist")
    assert out.strip() == "gmail.com, bob@example.com"


@pytest.mark.parametrize(
    ("word", "expected"), [("on", "true"), ("no", "false"), ("1", "true"), ("FALSE", "false")]
)
def test_boolean_words(capsys: pytest.CaptureFixture[str], word: str, expected: str) -> None:
    assert run(capsys, "settings", "set", "email_autoshare", word)[0] == EXIT_OK
    assert run(capsys, "settings", "get", "email_autoshare")[1].strip() == expected


def test_profile_option_after_the_subcommand_and_env(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "settings", "set", "sync_interval_minutes", "25", "--profile", str(tmp_path / "a"))
    assert (
        run(capsys, "--profile", str(tmp_path / "a"), "settings", "get", "sync_interval_minutes")[
            1
        ].strip()
        == "25"
    )
    # the env default (SCC_DESKTOP_HOME from conftest) is a different profile
    assert run(capsys, "settings", "get", "sync_interval_minutes")[1].strip() == "10"


def test_locked_setting_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        'reason = "IT says so."\n[locked]\nemail_autoshare = false\n', encoding="utf-8"
    )
    monkeypatch.setenv("SCC_DESKTOP_POLICY", str(policy))
    code, _, err = run(capsys, "settings", "set", "email_autoshare", "on")
    assert code == EXIT_REFUSED
    assert "locked" in err and "IT says so." in err
    listing = json.loads(run(capsys, "settings", "list", "--json")[1])
    row = next(r for r in listing if r["key"] == "email_autoshare")
    assert row["locked"] is True and row["value"] is False


def test_unknown_key_and_bad_value(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "settings", "get", "no_such_thing")
    assert code == EXIT_REFUSED and "unknown setting" in err
    code, _, err = run(capsys, "settings", "set", "contacts_direction", "sideways")
    assert code == EXIT_REFUSED and "two_way" in err


def test_settings_list_json_has_every_declaration(capsys: pytest.CaptureFixture[str]) -> None:
    from scc_desktop.settings import SETTINGS

    rows = json.loads(run(capsys, "settings", "list", "--json")[1])
    assert [r["key"] for r in rows] == [s.key for s in SETTINGS]


def test_status_on_a_fresh_profile(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status")
    assert code == EXIT_OK and "No sync session has run yet." in out
    data = json.loads(run(capsys, "status", "--json")[1])
    assert data["sessions"] == [] and data["open_issues"] == []


def test_files_are_private(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    profile = tmp_path / "private"
    run(capsys, "--profile", str(profile), "settings", "set", "email_autoshare", "on")
    for path in profile.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    assert (profile / "logs" / "scc-desktop.log").exists()


def test_sync_requires_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "sync")[0] == EXIT_REFUSED


def test_start_at_login_from_the_cli_manages_the_entry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from scc_desktop.autostart import Autostart
    from scc_desktop.paths import resolve_profile

    entry = Autostart(resolve_profile(), platform="linux").linux_entry()
    assert run(capsys, "settings", "set", "start_at_login", "on")[0] == EXIT_OK
    assert entry.exists()
    assert run(capsys, "settings", "set", "start_at_login", "off")[0] == EXIT_OK
    assert not entry.exists()
