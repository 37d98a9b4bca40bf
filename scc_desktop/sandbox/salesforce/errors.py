"""Salesforce's error shape: a JSON array of {message, errorCode, fields}."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class SfError(Exception):
    """An API error; handlers raise it and the router turns it into the JSON-array body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Sequence[str] = (),
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            item["fields"] = self.fields
        return [item]

    def record_error(self) -> dict[str, Any]:
        """The per-record shape used by sObject Collections results."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def invalid_session() -> SfError:
    return SfError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def not_found(message: str = "The requested resource does not exist") -> SfError:
    return SfError(404, "NOT_FOUND", message)


def malformed_query(message: str) -> SfError:
    return SfError(400, "MALFORMED_QUERY", message)


def invalid_field(message: str) -> SfError:
    return SfError(400, "INVALID_FIELD", message)


def invalid_type(sobject: str) -> SfError:
    return SfError(
        400,
        "INVALID_TYPE",
        f"sObject type '{sobject}' is not supported. If you are attempting to use a custom "
        "object, be sure to append the '__c' after the entity name. Please reference your WSDL "
        "or the describe call for the appropriate names.",
    )
