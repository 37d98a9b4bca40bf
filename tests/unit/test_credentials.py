import keyring.backend
import keyring.errors
import pytest

from scc_desktop.auth import credentials
from scc_desktop.auth.credentials import (
    CHUNK_CHARS,
    CredentialStore,
    KeyringLocked,
    KeyringUnavailable,
    MemoryBackend,
    system_backend,
)

WINDOWS_BLOB_LIMIT_BYTES = 2560


class LimitedBackend(MemoryBackend):
    """Refuses what Windows Credential Manager would refuse (UTF-16 blob over 2,560 bytes)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        if len(password.encode("utf-16-le")) > WINDOWS_BLOB_LIMIT_BYTES:
            raise keyring.errors.PasswordSetError("blob too large")
        super().set_password(service, username, password)


class LockedBackend(MemoryBackend):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


def test_round_trip_small_and_empty() -> None:
    store = CredentialStore("p1", MemoryBackend())
    assert store.get("salesforce.refresh_token") is None
    store.set("salesforce.refresh_token", "5Aep861abc")
    assert store.get("salesforce.refresh_token") == "5Aep861abc"
    store.set("empty", "")
    assert store.get("empty") == ""


def test_large_secret_fits_a_windows_sized_backend() -> None:
    backend = LimitedBackend()
    store = CredentialStore("p1", backend)
    secret = ("é😀" + "x" * 97) * 120  # ~12,000 chars, well past one blob
    assert len(secret) > 3 * CHUNK_CHARS
    store.set("microsoft.token_cache", secret)
    assert store.get("microsoft.token_cache") == secret


def test_shrinking_a_secret_removes_stale_chunks() -> None:
    backend = MemoryBackend()
    store = CredentialStore("p1", backend)
    store.set("cache", "a" * (CHUNK_CHARS * 5))
    store.set("cache", "b" * 10)
    assert store.get("cache") == "b" * 10
    names = [name for (_, name) in backend._items]
    assert sorted(names) == ["cache", "cache#0"]


def test_delete_removes_every_chunk() -> None:
    backend = MemoryBackend()
    store = CredentialStore("p1", backend)
    store.set("cache", "z" * (CHUNK_CHARS * 3 + 1))
    store.delete("cache")
    store.delete("cache")  # deleting twice is fine
    assert backend._items == {}
    assert store.get("cache") is None


def test_a_torn_write_reads_as_absent_not_as_a_wrong_secret() -> None:
    backend = MemoryBackend()
    store = CredentialStore("p1", backend)
    store.set("cache", "a" * (CHUNK_CHARS * 2))
    backend.set_password(store.service, "cache#1", "garbage")  # chunk from an interrupted write
    assert store.get("cache") is None


def test_profiles_do_not_share_secrets() -> None:
    backend = MemoryBackend()
    CredentialStore("one", backend).set("token", "A")
    assert CredentialStore("two", backend).get("token") is None


def test_locked_keyring_is_told_apart() -> None:
    store = CredentialStore("p1", LockedBackend())
    with pytest.raises(KeyringLocked) as info:
        store.get("token")
    assert "locked" in info.value.user_message


def test_no_keyring_is_reported_not_worked_around(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring.backends.fail

    monkeypatch.setattr(credentials.keyring, "get_keyring", keyring.backends.fail.Keyring)
    with pytest.raises(KeyringUnavailable) as info:
        system_backend()
    assert "Secret Service" in info.value.user_message
    store = CredentialStore("p1")
    with pytest.raises(KeyringUnavailable):
        store.set("token", "secret")


def test_plaintext_backends_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class PlaintextKeyring(keyring.backend.KeyringBackend):
        priority = 0.5  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            return None

        def set_password(self, service: str, username: str, password: str) -> None:
            raise AssertionError("must never be written to")

        def delete_password(self, service: str, username: str) -> None:
            return None

    PlaintextKeyring.__module__ = "keyrings.alt.file"
    PlaintextKeyring.__qualname__ = "PlaintextKeyring"
    monkeypatch.setattr(credentials.keyring, "get_keyring", PlaintextKeyring)
    with pytest.raises(KeyringUnavailable, match="does not keep secrets safely"):
        system_backend()
