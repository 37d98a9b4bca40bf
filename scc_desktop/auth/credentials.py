"""Secrets in the OS keyring, and nowhere else.

Windows Credential Manager holds at most 2,560 bytes per entry and an msal token cache is larger,
so a secret is written as numbered chunks plus a small manifest entry. The backend is checked
before use: a plaintext, "fail" or null backend is refused instead of silently used, and a locked
keyring is told apart from a missing one so the user can be told what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from typing import Any, Protocol

import keyring
import keyring.backend
import keyring.errors

from scc_desktop.errors import NeedsUser

log = logging.getLogger(__name__)

CHUNK_CHARS = 1000  # 1,000 UTF-16 code units stay far below Windows' 2,560-byte blob limit
MANIFEST_VERSION = 1

# Backends that would store secrets in clear text, or not at all.
_REFUSED_BACKENDS = (
    "keyrings.alt.file.PlaintextKeyring",
    "keyring.backends.fail.Keyring",
    "keyring.backends.null.Keyring",
    "keyrings.alt.Gnome.Keyring",
)


class CredentialError(NeedsUser):
    """Base for keyring problems; `user_message` is what the tray shows."""

    user_message = "The system keyring could not be used."


class KeyringUnavailable(CredentialError):
    user_message = (
        "No system keyring is available, so scc-desktop cannot keep your sign-in safely. "
        "Install and start a Secret Service (for example gnome-keyring or KWallet) and try again."
    )


class KeyringLocked(CredentialError):
    user_message = (
        "Your system keyring is locked. Unlock it (for example by signing in to your desktop "
        "session) and press Sync Now."
    )


class SecretBackend(Protocol):
    """The part of a keyring backend we use; an in-memory one serves tests and the sandbox."""

    def get_password(self, service: str, username: str) -> str | None: ...
    def set_password(self, service: str, username: str, password: str) -> None: ...
    def delete_password(self, service: str, username: str) -> None: ...


class MemoryBackend:
    """Keeps secrets in this process only: for tests and throwaway sandbox tokens."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def get_password(self, service: str, username: str) -> str | None:
        with self._lock:
            return self._items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._lock:
            self._items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        with self._lock:
            if (service, username) not in self._items:
                raise keyring.errors.PasswordDeleteError("not found")
            del self._items[(service, username)]


def _qualified_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def system_backend() -> SecretBackend:
    """The OS keyring, checked: raises KeyringUnavailable rather than using a plaintext store."""
    try:
        backend: Any = keyring.get_keyring()
    except Exception as exc:
        raise KeyringUnavailable(str(exc)) from exc
    name = _qualified_name(backend)
    # keyring's ChainerBackend hides its members; refuse it when all of them are refused.
    members = getattr(backend, "backends", None)
    if members is not None:
        usable = [m for m in members if _qualified_name(m) not in _REFUSED_BACKENDS]
        if not usable:
            raise KeyringUnavailable(f"only unsafe keyring backends are installed ({name})")
    elif name in _REFUSED_BACKENDS or getattr(backend, "priority", 1) <= 0:
        raise KeyringUnavailable(f"the keyring backend {name} does not keep secrets safely")
    return backend  # type: ignore[no-any-return]


class CredentialStore:
    """Named secrets for one profile, chunked so that any size fits any backend."""

    def __init__(self, profile_key: str, backend: SecretBackend | None = None) -> None:
        self.service = f"scc-desktop/{profile_key}"
        self._backend = backend
        self._lock = threading.RLock()

    @property
    def backend(self) -> SecretBackend:
        if self._backend is None:
            self._backend = system_backend()
        return self._backend

    def get(self, name: str) -> str | None:
        with self._lock:
            manifest_raw = self._call("get_password", name)
            if manifest_raw is None:
                return None
            manifest = json.loads(manifest_raw)
            parts: list[str] = []
            for index in range(int(manifest["chunks"])):
                part = self._call("get_password", f"{name}#{index}")
                if part is None:
                    log.warning(
                        "credential %s is incomplete in the keyring; treating as absent", name
                    )
                    return None
                parts.append(part)
            secret = "".join(parts)
            if hashlib.sha256(secret.encode("utf-8")).hexdigest() != manifest["sha256"]:
                log.warning("credential %s failed its checksum; treating as absent", name)
                return None
            return secret

    def set(self, name: str, secret: str) -> None:
        with self._lock:
            previous = self._chunk_count(name)
            chunks = [secret[i : i + CHUNK_CHARS] for i in range(0, len(secret), CHUNK_CHARS)] or [
                ""
            ]
            for index, chunk in enumerate(chunks):
                self._call("set_password", f"{name}#{index}", chunk)
            manifest = {
                "v": MANIFEST_VERSION,
                "chunks": len(chunks),
                "sha256": hashlib.sha256(secret.encode("utf-8")).hexdigest(),
            }
            # The manifest goes last: a crash mid-write leaves the old manifest, whose checksum
            # then fails, rather than a silently truncated secret.
            self._call("set_password", name, json.dumps(manifest))
            for index in range(len(chunks), previous):
                self._delete_quietly(f"{name}#{index}")

    def delete(self, name: str) -> None:
        with self._lock:
            count = self._chunk_count(name)
            self._delete_quietly(name)
            for index in range(count):
                self._delete_quietly(f"{name}#{index}")

    def _chunk_count(self, name: str) -> int:
        raw = self._call("get_password", name)
        if raw is None:
            return 0
        try:
            return int(json.loads(raw)["chunks"])
        except (ValueError, KeyError, TypeError):
            return 0

    def _delete_quietly(self, username: str) -> None:
        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            self._call("delete_password", username)

    def _call(self, method: str, username: str, *args: str) -> Any:
        try:
            return getattr(self.backend, method)(self.service, username, *args)
        except keyring.errors.KeyringLocked as exc:
            raise KeyringLocked(str(exc)) from exc
        except keyring.errors.NoKeyringError as exc:
            raise KeyringUnavailable(str(exc)) from exc
        except keyring.errors.InitError as exc:
            raise KeyringUnavailable(str(exc)) from exc
        except keyring.errors.PasswordDeleteError:
            raise
        except keyring.errors.KeyringError as exc:
            if "locked" in str(exc).lower():
                raise KeyringLocked(str(exc)) from exc
            raise CredentialError(str(exc)) from exc
