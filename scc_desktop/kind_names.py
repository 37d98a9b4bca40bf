"""How each synced kind is named to the user: one place for the CLI, tooltip and windows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindName:
    title: str  # a column or group heading: "Calendar"
    one: str  # "calendar item"
    many: str  # "calendar items"

    def count(self, n: int) -> str:
        return f"{n} {self.one if n == 1 else self.many}"


KIND_NAMES: dict[str, KindName] = {
    "contact": KindName("Contacts", "contact", "contacts"),
    "event": KindName("Calendar", "calendar item", "calendar items"),
    "task": KindName("Tasks", "task", "tasks"),
    "task_calendar": KindName(
        "Tasks in the calendar", "task in the calendar", "tasks in the calendar"
    ),
}


def kind_name(kind: str) -> KindName:
    """The names of a kind; an unknown kind (a newer state file) is shown by its key."""
    return KIND_NAMES.get(kind) or KindName(kind, f"{kind} item", f"{kind} items")
