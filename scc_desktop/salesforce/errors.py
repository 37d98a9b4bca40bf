"""The Salesforce side's errors, each with a `user_message` the tray and Sync Issues can show.

Nothing here carries a token: messages are built from Salesforce's error codes and texts, which
describe records and limits, never credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scc_desktop.errors import NeedsUser


class SalesforceError(Exception):
    """Base of every error the connector raises."""

    user_message: str = "Salesforce returned an unexpected error."

    def __init__(self, message: str = "", *, user_message: str | None = None) -> None:
        super().__init__(message or self.user_message)
        if user_message is not None:
            self.user_message = user_message
        # Batched writes interrupted by this error put the results of the batches already
        # written here (WriteResult objects), so the caller can save their links.
        self.completed: list[Any] = []


class ReconnectRequired(SalesforceError, NeedsUser):
    """The refresh token was revoked, expired or never stored: the user must sign in again."""

    user_message = "Reconnect Salesforce"


class ApiLimitExceeded(SalesforceError):
    """The org's daily API requests are used up (403 REQUEST_LIMIT_EXCEEDED)."""

    user_message = (
        "Salesforce's daily API limit for your org is used up; sync pauses until it resets."
    )


class TransientError(SalesforceError):
    """A failure worth retrying later: 5xx, 429, a dropped connection, a locked row."""

    user_message = "Salesforce is temporarily unavailable; sync will retry."

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        status: int | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(message, user_message=user_message)
        self.retry_after = retry_after
        self.status = status


class QueryError(SalesforceError):
    """Salesforce refused a query (MALFORMED_QUERY, INVALID_FIELD ...): a bug or a bad filter."""

    user_message = "Salesforce rejected a query."

    def __init__(self, message: str, *, error_code: str = "") -> None:
        super().__init__(message, user_message=f"Salesforce rejected a query: {message}")
        self.error_code = error_code


class RequestRefused(SalesforceError):
    """A call Salesforce refused for a reason that retrying will not fix (403, 404, 400)."""

    def __init__(self, message: str, *, status: int, error_code: str = "") -> None:
        super().__init__(message, user_message=f"Salesforce refused the request: {message}")
        self.status = status
        self.error_code = error_code


class FileTooLarge(SalesforceError):
    """An attachment above the upload limit; it is skipped and reported, never truncated."""

    def __init__(self, name: str, size: int, limit: int) -> None:
        super().__init__(
            f"{name} is {size} bytes, above the {limit}-byte limit",
            user_message=(
                f"The file {name!r} ({size // 1024} KB) is larger than Salesforce accepts "
                f"({limit // 1024} KB) and was not uploaded."
            ),
        )
        self.name = name
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class RecordError:
    """One record's failure, as Salesforce reported it (statusCode, message, fields)."""

    status_code: str
    message: str
    fields: tuple[str, ...] = field(default_factory=tuple)

    @property
    def user_message(self) -> str:
        where = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.message}{where} [{self.status_code}]"

    @property
    def transient(self) -> bool:
        return self.status_code in TRANSIENT_RECORD_CODES


class RecordFailed(SalesforceError):
    """A single-record operation failed with the record errors Salesforce gave."""

    def __init__(self, errors: list[RecordError]) -> None:
        text = "; ".join(e.user_message for e in errors) or "the record was not saved"
        super().__init__(text, user_message=text)
        self.errors = errors


# Per-record codes that mean "try this record again", not "this record is wrong".
TRANSIENT_RECORD_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}
)
