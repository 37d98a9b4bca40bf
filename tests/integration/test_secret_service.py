"""The credential store against a real Secret Service (gnome-keyring in a private D-Bus session).

The daemon runs inside `dbus-run-session`, so it ends with the test and never touches the user's
own keyring. CI installs gnome-keyring and dbus-x11; the README's test command runs this too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.secret_service

PROBE = textwrap.dedent(
    """
    import json, sys
    import keyring
    from scc_desktop.auth.credentials import CredentialStore, system_backend
    backend = system_backend()
    store = CredentialStore("secret-service-test", backend)
    big = "token-" + "0123456789abcdef" * 500
    store.set("microsoft.token_cache", big)
    again = CredentialStore("secret-service-test", system_backend())
    ok_big = again.get("microsoft.token_cache") == big
    store.set("microsoft.token_cache", "small")
    ok_small = again.get("microsoft.token_cache") == "small"
    store.delete("microsoft.token_cache")
    gone = again.get("microsoft.token_cache") is None
    print(json.dumps({"backend": type(backend).__module__ + "." + type(backend).__name__,
                      "big": ok_big, "small": ok_small, "gone": gone}))
    """
)

SCRIPT = (
    "echo -n ci-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; "
    '"$PYTHON" -c "$PROBE"'
)


def test_credential_store_on_a_real_secret_service() -> None:
    if not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")):
        pytest.fail(
            "gnome-keyring and dbus are needed for this test: "
            "apt-get install -y gnome-keyring dbus-x11 (.ci/run does this)"
        )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS")
    }
    env.update({"PYTHON": sys.executable, "PROBE": PROBE})
    result = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    import json

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"].endswith("SecretService.Keyring")
    assert report == {**report, "big": True, "small": True, "gone": True}
