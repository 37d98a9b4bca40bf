"""Building SOQL safely: every literal goes through `soql_quote()`.

SOQL string literals are single-quoted; inside them a backslash escapes the quote characters,
the backslash itself and the control characters \\n \\r \\t \\b \\f. `LIKE` patterns additionally
escape `%` and `_`. Field and object names are checked against a plain identifier pattern rather
than quoted (SOQL has no quoting for names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in _ESCAPES))
_LIKE_RE = re.compile(r"[%_]")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")


def soql_escape(value: str) -> str:
    """The body of a SOQL string literal (no surrounding quotes)."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], value)


def soql_quote(value: str) -> str:
    """A SOQL string literal: `o'neil@example.com` -> `'o\\'neil@example.com'`."""
    if not isinstance(value, str):
        raise TypeError(f"soql_quote takes a str, not {type(value).__name__}")
    return "'" + soql_escape(value) + "'"


def soql_like(value: str, *, prefix: bool = False, suffix: bool = False) -> str:
    """A LIKE pattern literal matching `value` literally, optionally with % around it."""
    body = _LIKE_RE.sub(lambda m: "\\" + m.group(0), soql_escape(value))
    return "'" + ("%" if prefix else "") + body + ("%" if suffix else "") + "'"


def soql_in(values: Iterable[str]) -> str:
    """`('a','b')` for an IN clause; raises on an empty list (SOQL has no empty IN)."""
    quoted = [soql_quote(v) for v in values]
    if not quoted:
        raise ValueError("an IN list needs at least one value")
    return "(" + ",".join(quoted) + ")"


def soql_datetime(value: datetime) -> str:
    """An unquoted SOQL datetime literal in UTC: 2025-10-08T01:02:03Z."""
    if value.tzinfo is None:
        raise ValueError("SOQL datetimes must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_date(value: date) -> str:
    """An unquoted SOQL date literal: 2025-10-08."""
    if isinstance(value, datetime):
        value = value.date()
    return value.isoformat()


def soql_bool(value: bool) -> str:
    return "true" if value else "false"


def soql_name(name: str) -> str:
    """Check an object or field name (dotted relationship paths allowed) and return it."""
    if not _NAME_RE.match(name):
        raise ValueError(f"not a valid SOQL name: {name!r}")
    return name


class Subquery(str):
    """A parent-to-child subquery built by `subquery()`: `select()` takes it as a field."""

    __slots__ = ()


def subquery(
    relationship: str,
    fields: Iterable[str],
    where: str | None = None,
    order_by: str | None = None,
    limit: int | None = None,
) -> Subquery:
    """`(SELECT f1, f2 FROM Relationship [WHERE ...] ...)` for a parent query's field list.

    Each parent record then carries `Relationship` as a nested query result,
    `{"totalSize": n, "done": true, "records": [...]}`, or null when there are no children.
    """
    return Subquery(f"({select(relationship, fields, where, order_by, limit)})")


def select(
    sobject: str,
    fields: Iterable[str],
    where: str | None = None,
    order_by: str | None = None,
    limit: int | None = None,
) -> str:
    """`SELECT f1, f2 FROM T [WHERE ...] [ORDER BY ...] [LIMIT n]`; names are checked.

    `where` and `order_by` are SOQL fragments that the caller built with the helpers above;
    a field may be a `subquery()`.
    """
    names = list(dict.fromkeys(f if isinstance(f, Subquery) else soql_name(f) for f in fields))
    if not names:
        raise ValueError("select needs at least one field")
    text = f"SELECT {', '.join(names)} FROM {soql_name(sobject)}"
    if where:
        text += f" WHERE {where}"
    if order_by:
        text += f" ORDER BY {order_by}"
    if limit is not None:
        text += f" LIMIT {int(limit)}"
    return text
