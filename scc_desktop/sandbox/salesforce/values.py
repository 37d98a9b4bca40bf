"""Salesforce's wire formats for dates and datetimes, in one place so every module agrees."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?:?$"
)


def fmt_dt(value: datetime) -> str:
    """Salesforce's JSON datetime: millisecond precision, '+0000' offset."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_dt(text: str) -> datetime:
    """Parse what clients send (ISO 8601 with Z, +00:00, +0000, or no offset meaning UTC)."""
    m = _DT_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a datetime: {text!r}")
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    micro = int((frac or "0").ljust(6, "0"))
    out = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec or 0), micro, tzinfo=UTC)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        out -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return out


def parse_date(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise ValueError(f"not a date: {text!r}")
    return date.fromisoformat(text.strip())


def fmt_date(value: date) -> str:
    return value.isoformat()
