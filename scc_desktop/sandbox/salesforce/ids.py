"""Salesforce-shaped record ids: 3-char key prefix, 12 base-62 chars, 3-char case checksum."""

from __future__ import annotations

import re

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Za-z0-5]{3})?$")
POD = "5g0"  # instance + reserved characters, constant for the sandbox


def checksum(id15: str) -> str:
    """The 18-char suffix that makes an id case-insensitive-safe."""
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_CHECKSUM[bits])
    return "".join(out)


def make_id(prefix: str, seq: int) -> str:
    """An 18-char id for the `seq`-th record made in this org."""
    digits = []
    n = seq
    for _ in range(9):
        n, r = divmod(n, 62)
        digits.append(_BASE62[r])
    id15 = prefix + POD + "".join(reversed(digits))
    return id15 + checksum(id15)


def normalize(value: str) -> str | None:
    """The 18-char form of a 15- or 18-char id, or None when it is not an id."""
    if not _ID_RE.match(value):
        return None
    if len(value) == 15:
        return value + checksum(value)
    # The suffix encodes which of the 15 characters are upper case, so an 18-char id survives a
    # case-insensitive system: restore the case from it, as Salesforce does.
    suffix = value[15:].upper()
    chars = []
    for chunk, code in enumerate(suffix):
        bits = _CHECKSUM.index(code)
        for i, ch in enumerate(value[chunk * 5 : chunk * 5 + 5]):
            chars.append(ch.upper() if bits & (1 << i) else ch.lower())
    id15 = "".join(chars)
    return id15 + suffix


def prefix_of(value: str) -> str:
    return value[:3]
