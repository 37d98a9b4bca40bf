"""Time zones and recurrence for the emulated calendar.

Graph takes `dateTimeTimeZone` values with either IANA or Windows zone names and expands a
series in the series' own zone, so a 10:00 weekly meeting stays at 10:00 local across a DST
switch and moves in UTC. Only daily and weekly patterns are emulated (enough for the sync).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WINDOWS_ZONES = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Singapore Standard Time": "Asia/Singapore",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
}

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class CalendarError(ValueError):
    """A bad time zone or date in a request (Graph answers 400)."""


def zone(name: str | None) -> dt.tzinfo:
    if not name:
        return dt.UTC
    iana = WINDOWS_ZONES.get(name, name)
    if iana.upper() == "UTC":
        return dt.UTC
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(f"unknown time zone {name!r}") from exc


def parse_local(value: str) -> dt.datetime:
    """Graph's dateTime: ISO without offset, 0-7 fractional digits."""
    text = value.strip().rstrip("Z")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise CalendarError(f"bad dateTime {value!r}") from exc
    return parsed.replace(tzinfo=None)


def to_utc(value: dict[str, Any]) -> dt.datetime:
    """A dateTimeTimeZone dict as an aware UTC datetime."""
    local = parse_local(str(value.get("dateTime", "")))
    return local.replace(tzinfo=zone(value.get("timeZone"))).astimezone(dt.UTC)


def parse_instant(value: str) -> dt.datetime:
    """A query parameter such as startDateTime (offset optional, UTC assumed)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise CalendarError(f"bad date/time {value!r}") from exc
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def render(value: dt.datetime, tz_name: str) -> dict[str, str]:
    """Graph's output shape: 7 fractional digits, no offset, in the requested zone."""
    local = value.astimezone(zone(tz_name)).replace(tzinfo=None)
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": tz_name}


def occurrence_starts(
    event: dict[str, Any], window_start: dt.datetime, window_end: dt.datetime, limit: int = 1000
) -> list[dt.datetime]:
    """UTC starts of a series' occurrences overlapping [window_start, window_end)."""
    recurrence = event.get("recurrence") or {}
    pattern = recurrence.get("pattern") or {}
    rng = recurrence.get("range") or {}
    start_tz = zone(event["start"].get("timeZone"))
    rec_tz = zone(rng.get("recurrenceTimeZone") or event["start"].get("timeZone"))
    first_local = to_utc(event["start"]).astimezone(rec_tz if rec_tz else start_tz)
    duration = to_utc(event["end"]) - to_utc(event["start"])
    start_date = dt.date.fromisoformat(rng.get("startDate") or first_local.date().isoformat())
    end_date = (
        dt.date.fromisoformat(rng["endDate"])
        if rng.get("type") == "endDate" and rng.get("endDate")
        else None
    )
    max_count = int(rng.get("numberOfOccurrences") or 0) if rng.get("type") == "numbered" else 0
    interval = max(1, int(pattern.get("interval") or 1))
    kind = pattern.get("type", "daily")
    wall = first_local.time().replace(tzinfo=None)
    if kind == "weekly":
        days = {
            DAYS.index(d.lower()) for d in pattern.get("daysOfWeek") or [DAYS[start_date.weekday()]]
        }
        first_day = DAYS.index(str(pattern.get("firstDayOfWeek") or "sunday").lower())
    elif kind != "daily":
        raise CalendarError(f"recurrence pattern {kind!r} is not emulated (daily, weekly)")
    out: list[dt.datetime] = []
    count = 0
    day = start_date
    horizon = window_end.date() + dt.timedelta(days=1)
    week_anchor = (
        start_date - dt.timedelta(days=(start_date.weekday() - first_day) % 7)
        if kind == "weekly"
        else start_date
    )
    while day <= horizon and len(out) < limit:
        if end_date is not None and day > end_date:
            break
        if kind == "daily":
            hit = (day - start_date).days % interval == 0
        else:
            weeks = (day - week_anchor).days // 7
            hit = day.weekday() in days and weeks % interval == 0
        if hit:
            count += 1
            if max_count and count > max_count:
                break
            begin = dt.datetime.combine(day, wall).replace(tzinfo=rec_tz).astimezone(dt.UTC)
            if begin < window_end and begin + duration > window_start:
                out.append(begin)
        day += dt.timedelta(days=1)
    return out
