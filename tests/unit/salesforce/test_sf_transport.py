import pytest
import requests

from scc_desktop.salesforce.transport import CallStats, classify, new_http_session


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://x/services/data/v59.0/query/?q=SELECT", "query"),
        ("https://x/services/data/v59.0/query?q=SELECT", "query"),
        ("https://x/services/data/v59.0/query/01gXX-2000", "query_more"),
        ("https://x/services/data/v59.0/queryAll/?q=x", "query"),
        ("https://x/services/data/v59.0/composite/sobjects", "collections"),
        ("https://x/services/data/v59.0/composite/sobjects/Contact/Key__c", "collections"),
        ("https://x/services/data/v59.0/composite", "composite"),
        ("https://x/services/data/v59.0/sobjects/Contact/deleted/?start=a", "deleted"),
        ("https://x/services/data/v59.0/sobjects/Contact/updated/?start=a", "updated"),
        ("https://x/services/data/v59.0/sobjects/EmailMessage/describe", "describe"),
        ("https://x/services/data/v59.0/sobjects/Contact/003", "sobject"),
        ("https://x/services/oauth2/token", "oauth"),
        ("https://x/id/00D/005", "identity"),
    ],
)
def test_classify(url: str, kind: str) -> None:
    assert classify("GET", url) == kind


def test_stats_read_limit_info() -> None:
    stats = CallStats()
    stats.record("query", {"Sforce-Limit-Info": "api-usage=850/1000"})
    stats.record("query", {})
    stats.record("collections", None)
    assert stats.counts() == {"query": 2, "collections": 1}
    assert stats.usage is not None
    assert stats.usage.used == 850 and stats.usage.limit == 1000
    assert stats.usage.should_slow_down
    stats.reset()
    assert stats.total == 0 and stats.usage is not None


def test_session_refuses_plain_http() -> None:
    session = new_http_session()
    assert session.verify is True
    with pytest.raises(requests.exceptions.InvalidSchema):
        session.get("http://127.0.0.1:9/")
