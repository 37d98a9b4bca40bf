import ssl

import requests
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from scc_desktop.salesforce.client import translate
from scc_desktop.salesforce.errors import (
    ApiLimitExceeded,
    QueryError,
    ReconnectRequired,
    RecordError,
    RequestRefused,
    SalesforceError,
    TransientError,
)


def body(code: str, message: str = "m") -> list[dict[str, str]]:
    return [{"errorCode": code, "message": message}]


def test_error_mapping() -> None:
    url = "https://x/services/data/v59.0/query"
    limit = translate(SalesforceRefusedRequest(url, 403, "q", body("REQUEST_LIMIT_EXCEEDED")))
    assert isinstance(limit, ApiLimitExceeded)
    assert isinstance(translate(SalesforceGeneralError(url, 503, "q", body("X"))), TransientError)
    throttled = translate(SalesforceGeneralError(url, 429, "q", body("X")), retry_after=7)
    assert isinstance(throttled, TransientError) and throttled.retry_after == 7
    bad = translate(SalesforceMalformedRequest(url, 400, "q", body("MALFORMED_QUERY", "bad")))
    assert isinstance(bad, QueryError) and bad.error_code == "MALFORMED_QUERY"
    refused = translate(SalesforceRefusedRequest(url, 403, "q", body("INSUFFICIENT_ACCESS")))
    assert isinstance(refused, RequestRefused) and refused.status == 403
    expired = translate(SalesforceExpiredSession(url, 401, "q", body("INVALID_SESSION_ID")))
    assert isinstance(expired, ReconnectRequired)
    assert expired.user_message == "Reconnect Salesforce"
    assert isinstance(translate(requests.ConnectionError("reset")), TransientError)


def test_tls_failures_told_apart() -> None:
    cert = requests.exceptions.SSLError(
        ssl.SSLCertVerificationError(1, "certificate verify failed")
    )
    mapped = translate(cert)
    assert type(mapped) is SalesforceError and "certificate" in mapped.user_message
    eof = requests.exceptions.SSLError(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    assert isinstance(translate(eof), TransientError)


def test_record_error_messages() -> None:
    err = RecordError("STRING_TOO_LONG", "Last Name: data value too large", ("LastName",))
    assert err.user_message == "Last Name: data value too large (LastName) [STRING_TOO_LONG]"
    assert not err.transient
    assert RecordError("UNABLE_TO_LOCK_ROW", "locked").transient
