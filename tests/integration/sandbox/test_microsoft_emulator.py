# ruff: noqa: F811  (pytest fixtures imported from ms_fixtures)
"""The Microsoft identity + Graph emulator over real HTTPS, with the real msal and requests."""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import threading
import time
import webbrowser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from ms_fixtures import (  # noqa: F401 (fixtures)
    SCOPES,
    Graph,
    graph,
    ms_server,
    ms_session,
    msal_app,
)

from scc_desktop.sandbox.microsoft.service import MicrosoftService
from scc_desktop.sandbox.server import SandboxServer

SF_PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name SfId"
IMMUTABLE = 'IdType="ImmutableId"'


def deliver(graph: Graph, n: int, folder: str = "inbox", **extra: Any) -> list[dict[str, Any]]:
    return [
        graph.admin(
            "microsoft/deliver",
            {
                "folder": folder,
                "from": "Jane Cooper <jane.cooper@acme.example>",
                "subject": f"Message {i}",
                "body": f"body {i}",
                **extra,
            },
        )
        for i in range(n)
    ]


def drain(
    graph: Graph, url: str, prefer: str | None = None
) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink; returns (items, deltaLink, calls)."""
    items: list[dict[str, Any]] = []
    calls = 0
    while True:
        page = graph.get(url, prefer=prefer)
        calls += 1
        items += page["value"]
        if "@odata.deltaLink" in page:
            return items, page["@odata.deltaLink"], calls
        url = page["@odata.nextLink"]


# -- identity -------------------------------------------------------------------------------------
def test_discovery_document_is_https_and_complete(
    ms_server: SandboxServer, ms_session: requests.Session
) -> None:
    info = ms_server.info()["microsoft"]
    assert set(info) == {"authority", "graph_url", "client_id", "tenant", "username"}
    doc = ms_session.get(
        f"{info['authority']}/v2.0/.well-known/openid-configuration", timeout=10
    ).json()
    for key in (
        "authorization_endpoint",
        "token_endpoint",
        "device_authorization_endpoint",
        "jwks_uri",
    ):
        assert doc[key].startswith("https://127.0.0.1:"), key
    assert doc["issuer"] == f"{info['authority']}/v2.0"


def test_device_flow_then_silent_refresh_then_expired_refresh(
    ms_server: SandboxServer, ms_session: requests.Session
) -> None:
    app = msal_app(ms_server, ms_session)
    flow = app.initiate_device_flow(scopes=SCOPES)
    assert flow["interval"] == 1 and flow["verification_uri"].startswith("https://")
    started = time.monotonic()
    result = app.acquire_token_by_device_flow(flow)  # pending, then approved after the default 1 s
    assert time.monotonic() - started >= 0.9
    assert result["token_type"] == "Bearer", result
    claims = result["id_token_claims"]
    assert claims["preferred_username"] == "alex.morgan@northwind.example"
    assert claims["tid"] == ms_server.info()["microsoft"]["tenant"]
    (account,) = app.get_accounts()
    assert account["username"] == "alex.morgan@northwind.example"

    cached = app.acquire_token_silent(SCOPES, account=account)
    assert cached is not None and cached["access_token"] == result["access_token"]
    refreshed = app.acquire_token_silent(SCOPES, account=account, force_refresh=True)
    assert refreshed is not None and refreshed["access_token"] != result["access_token"]
    assert refreshed["token_source"] == "identity_provider"
    me = ms_session.get(
        ms_server.info()["microsoft"]["graph_url"] + "/me",
        headers={"Authorization": f"Bearer {refreshed['access_token']}"},
        timeout=10,
    )
    assert me.json()["mail"] == "alex.morgan@northwind.example"

    ms_session.post(
        f"{ms_server.admin_url}/microsoft/expire_tokens", json={"refresh": True}, timeout=10
    )
    failed = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)
    assert failed is not None and failed["error"] == "invalid_grant"
    assert "AADSTS700082" in failed["error_description"]


def test_device_flow_waits_for_admin_approval(
    ms_server: SandboxServer, ms_session: requests.Session
) -> None:
    ms_session.post(
        f"{ms_server.admin_url}/microsoft/settings",
        json={"device_approval_delay_s": -1},
        timeout=10,
    )
    app = msal_app(ms_server, ms_session)
    flow = app.initiate_device_flow(scopes=SCOPES)
    pending = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    assert pending["error"] == "authorization_pending"
    approved = ms_session.post(
        f"{ms_server.admin_url}/microsoft/approve_device", json={}, timeout=10
    ).json()
    assert approved["approved"] == 1
    assert "access_token" in app.acquire_token_by_device_flow(flow)


@pytest.mark.filterwarnings("ignore:response_mode=.form_post. is recommended")
def test_auth_code_flow_with_pkce_and_nonce(
    ms_server: SandboxServer, ms_session: requests.Session
) -> None:
    app = msal_app(ms_server, ms_session)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri="http://localhost:53117")
    assert "code_challenge=" in flow["auth_uri"]
    browser = ms_session.get(flow["auth_uri"], allow_redirects=False, timeout=10)
    assert browser.status_code == 302
    location = urlsplit(browser.headers["Location"])
    assert (location.hostname, location.port) == ("localhost", 53117)
    auth_response = dict(parse_qsl(location.query))
    assert auth_response["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == "alex.morgan@northwind.example"
    # the code is single use
    again = app.acquire_token_by_auth_code_flow(dict(flow, nonce=flow["nonce"]), auth_response)
    assert again.get("error") == "invalid_grant"


class FormPostBrowser(webbrowser.BaseBrowser):
    """Plays the system browser for msal's interactive flow: authorize, then submit the form."""

    def __init__(self, session: requests.Session) -> None:
        super().__init__("scc-ms-test")
        self.session = session
        self.results: list[int] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        threading.Thread(target=self._run, args=(url,), daemon=True).start()
        return True

    def _run(self, url: str) -> None:
        page = self.session.get(url, allow_redirects=False, timeout=10)
        action = re.search(r'action="([^"]+)"', page.text)
        assert page.status_code == 200 and action is not None, page.text
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
        landing = requests.post(
            html.unescape(action.group(1)),
            data={k: html.unescape(v) for k, v in fields.items()},
            timeout=10,
        )
        self.results.append(landing.status_code)


def test_interactive_flow_with_form_post(
    ms_server: SandboxServer, ms_session: requests.Session
) -> None:
    browser = FormPostBrowser(ms_session)
    webbrowser.register("scc-ms-test", None, browser, preferred=True)
    try:
        app = msal_app(ms_server, ms_session)
        result = app.acquire_token_interactive(SCOPES, timeout=20, prompt="select_account")
    finally:
        webbrowser._browsers.pop("scc-ms-test", None)  # type: ignore[attr-defined]
        order: list[str] = webbrowser._tryorder or []  # type: ignore[attr-defined]
        if "scc-ms-test" in order:
            order.remove("scc-ms-test")
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == "alex.morgan@northwind.example"
    assert browser.results == [200]


@pytest.mark.filterwarnings("ignore:response_mode=.form_post. is recommended")
def test_auth_code_rejects_wrong_verifier(
    ms_server: SandboxServer, ms_session: requests.Session
) -> None:
    app = msal_app(ms_server, ms_session)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri="http://127.0.0.1:53118/cb")
    location = ms_session.get(flow["auth_uri"], allow_redirects=False, timeout=10).headers[
        "Location"
    ]
    result = app.acquire_token_by_auth_code_flow(
        dict(flow, code_verifier="x" * 50), dict(parse_qsl(urlsplit(location).query))
    )
    assert result["error"] == "invalid_grant"


def test_graph_checks_tokens_and_uses_graph_error_shape(graph: Graph) -> None:
    bad = graph.session.get(graph.url + "/me", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401
    error = bad.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert graph.call("GET", "/me").status_code == 200
    graph.admin("microsoft/expire_tokens", {})
    expired = graph.call("GET", "/me")
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_token_lifetime_setting(
    graph: Graph, ms_server: SandboxServer, ms_session: requests.Session
) -> None:
    graph.admin("microsoft/settings", {"token_lifetime_s": 1})
    app = msal_app(ms_server, ms_session)
    result = app.acquire_token_by_device_flow(app.initiate_device_flow(scopes=SCOPES))
    assert result["expires_in"] == 1
    graph.token = result["access_token"]
    assert graph.call("GET", "/me").status_code == 200
    time.sleep(1.2)
    assert graph.call("GET", "/me").status_code == 401


# -- folders and messages -------------------------------------------------------------------------
def test_folders_well_known_children_and_duplicates(graph: Graph) -> None:
    inbox = graph.get("/me/mailFolders/inbox")
    assert inbox["displayName"] == "Inbox"
    assert graph.get(f"/me/mailFolders/{inbox['id']}")["id"] == inbox["id"]
    assert graph.get("/me/mailFolders/sentitems")["displayName"] == "Sent Items"
    created = graph.post("/me/mailFolders", {"displayName": "Salesforce Emails"})
    dup = graph.call("POST", "/me/mailFolders", {"displayName": "salesforce emails"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "ErrorFolderExists"
    child = graph.post(f"/me/mailFolders/{created['id']}/childFolders", {"displayName": "2026"})
    assert child["parentFolderId"] == created["id"]
    assert graph.get(f"/me/mailFolders/{created['id']}")["childFolderCount"] == 1
    found = graph.get("/me/mailFolders?$filter=displayName eq 'Salesforce Emails'")["value"]
    assert [f["id"] for f in found] == [created["id"]]
    missing = graph.call("GET", "/me/mailFolders/AAMkNope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ErrorItemNotFound"


def test_messages_list_paging_select_patch_and_extended_properties(graph: Graph) -> None:
    deliver(graph, 12)
    page = graph.get("/me/mailFolders/inbox/messages?$top=5&$select=subject,from")
    assert len(page["value"]) == 5 and set(page["value"][0]) == {
        "@odata.etag",
        "id",
        "subject",
        "from",
    }
    seen = [m["id"] for m in page["value"]]
    while "@odata.nextLink" in page:
        page = graph.get(page["@odata.nextLink"])
        seen += [m["id"] for m in page["value"]]
    assert len(seen) == len(set(seen)) == 12
    mid = seen[0]
    patched = graph.call(
        "PATCH",
        f"/me/messages/{mid}",
        {
            "categories": ["Salesforce"],
            "singleValueExtendedProperties": [{"id": SF_PROP, "value": "00T000000000001"}],
        },
    )
    assert patched.status_code == 200 and patched.json()["categories"] == ["Salesforce"]
    plain = graph.get(f"/me/messages/{mid}")
    assert "singleValueExtendedProperties" not in plain
    expanded = graph.get(
        f"/me/messages/{mid}?$expand=singleValueExtendedProperties($filter=id eq '{SF_PROP}')"
    )
    assert expanded["singleValueExtendedProperties"] == [
        {"id": SF_PROP, "value": "00T000000000001"}
    ]
    by_prop = graph.get(
        "/me/mailFolders/inbox/messages?$filter=singleValueExtendedProperties/any"
        f"(ep: ep/id eq '{SF_PROP}' and ep/value eq '00T000000000001')"
    )
    assert [m["id"] for m in by_prop["value"]] == [mid]
    categorized = graph.get(
        "/me/mailFolders/inbox/messages?$filter=categories/any(c:c eq 'Salesforce')"
    )
    assert len(categorized["value"]) == 1


def test_create_message_in_folder_and_master_categories(graph: Graph) -> None:
    folder = graph.post("/me/mailFolders", {"displayName": "Salesforce Emails"})
    msg = graph.post(
        f"/me/mailFolders/{folder['id']}/messages",
        {"subject": "Draft", "toRecipients": [{"emailAddress": {"address": "a@b.example"}}]},
    )
    assert msg["parentFolderId"] == folder["id"] and msg["isDraft"] is True
    cat = graph.post(
        "/me/outlook/masterCategories", {"displayName": "Salesforce", "color": "preset9"}
    )
    assert cat["color"] == "preset9"
    assert (
        graph.call(
            "POST", "/me/outlook/masterCategories", {"displayName": "Salesforce"}
        ).status_code
        == 409
    )
    names = [c["displayName"] for c in graph.get("/me/outlook/masterCategories?$top=100")["value"]]
    assert "Salesforce" in names


def test_delta_pages_removals_quiet_pass_and_410(graph: Graph) -> None:
    folder = graph.post("/me/mailFolders", {"displayName": "Salesforce Emails"})
    url = f"/me/mailFolders/{folder['id']}/messages/delta?$select=subject,internetMessageId"
    for i in range(25):
        graph.post(f"/me/mailFolders/{folder['id']}/messages", {"subject": f"m{i}"})
    items, delta_link, calls = drain(graph, url, prefer="odata.maxpagesize=10")
    assert calls == 3 and len(items) == 25 and len({m["id"] for m in items}) == 25
    assert set(items[0]) >= {"id", "subject", "internetMessageId"} and "body" not in items[0]

    # quiet pass: exactly one call, empty, a new deltaLink
    graph.admin("counters/reset")
    quiet = graph.get(delta_link, prefer="odata.maxpagesize=10")
    assert quiet["value"] == [] and "@odata.deltaLink" in quiet
    assert graph.counters()["message_delta"] == 1

    # a delete and a move out show as @removed; a change shows the item again
    ids = [m["id"] for m in items]
    assert graph.call("DELETE", f"/me/messages/{ids[0]}").status_code == 204
    assert graph.post(f"/me/messages/{ids[1]}/move", {"destinationId": "inbox"})["id"] != ids[1]
    graph.call("PATCH", f"/me/messages/{ids[2]}", {"categories": ["Salesforce"]})
    changes, delta_link2, _ = drain(graph, quiet["@odata.deltaLink"])
    removed = {c["id"]: c["@removed"]["reason"] for c in changes if "@removed" in c}
    assert removed == {ids[0]: "deleted", ids[1]: "deleted"}
    changed = [c for c in changes if "@removed" not in c]
    assert [c["id"] for c in changed] == [ids[2]]

    # tokens die when invalidated (and when too old)
    graph.admin("microsoft/invalidate_delta_tokens")
    gone = graph.call("GET", delta_link2)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "SyncStateNotFound"
    _, fresh, _ = drain(graph, url, prefer="odata.maxpagesize=50")
    graph.admin("microsoft/settings", {"delta_token_max_age_s": 0})
    time.sleep(0.05)
    assert graph.call("GET", fresh).status_code == 410


def test_delta_default_page_size_and_replay(graph: Graph) -> None:
    deliver(graph, 12)
    first = graph.get("/me/mailFolders/inbox/messages/delta")
    assert len(first["value"]) == 10 and "@odata.nextLink" in first
    again = graph.get(first["@odata.nextLink"])  # replaying a link is allowed
    assert graph.get(first["@odata.nextLink"])["value"] == again["value"]
    small = graph.get("/me/mailFolders/inbox/messages/delta", prefer="odata.maxpagesize=5")
    assert len(small["value"]) == 5
    assert len(graph.get(small["@odata.nextLink"])["value"]) == 5  # the round keeps its size


def test_immutable_ids_survive_moves(graph: Graph) -> None:
    (msg,) = deliver(graph, 1)
    applied = graph.call("GET", "/me/messages?$top=1", prefer=f"{IMMUTABLE}, odata.maxpagesize=5")
    assert applied.headers["Preference-Applied"] == 'odata.maxpagesize=5, IdType="ImmutableId"'
    assert applied.json()["value"][0]["id"] == msg["id"]
    archive = graph.get("/me/mailFolders/archive")
    immutable = graph.get(f"/me/messages/{msg['rest_id']}", prefer=IMMUTABLE)["id"]
    assert immutable == msg["id"]
    moved = graph.post(
        f"/me/messages/{immutable}/move", {"destinationId": archive["id"]}, prefer=IMMUTABLE
    )
    assert moved["id"] == immutable and moved["parentFolderId"] == archive["id"]
    assert (
        graph.get(f"/me/messages/{immutable}", prefer=IMMUTABLE)["parentFolderId"] == archive["id"]
    )
    # without the preference a move hands out a new id and the old one is gone
    rest_id = graph.get(f"/me/messages/{immutable}")["id"]
    moved_again = graph.post(f"/me/messages/{rest_id}/move", {"destinationId": "inbox"})
    assert moved_again["id"] != rest_id
    assert graph.call("GET", f"/me/messages/{rest_id}").status_code == 404
    assert graph.get(f"/me/messages/{immutable}", prefer=IMMUTABLE)["id"] == immutable


# -- attachments ----------------------------------------------------------------------------------
def test_attachments_small_inline_reference_and_upload_session(graph: Graph) -> None:
    (msg,) = deliver(
        graph,
        1,
        attachments=[
            {
                "name": "a.pdf",
                "contentType": "application/pdf",
                "contentBytes": base64.b64encode(b"%PDF-1.4 x").decode(),
            },
            {
                "name": "logo.png",
                "contentType": "image/png",
                "size": 10,
                "isInline": True,
                "contentId": "logo",
            },
            {
                "@odata.type": "#microsoft.graph.referenceAttachment",
                "name": "Deck.pptx",
                "sourceUrl": "https://x.example/d",
            },
        ],
    )
    got = graph.get(f"/me/messages/{msg['id']}")
    assert got["hasAttachments"] is True
    atts = graph.get(f"/me/messages/{msg['id']}/attachments")["value"]
    kinds = {a["name"]: (a["@odata.type"], a["isInline"]) for a in atts}
    assert kinds == {
        "a.pdf": ("#microsoft.graph.fileAttachment", False),
        "logo.png": ("#microsoft.graph.fileAttachment", True),
        "Deck.pptx": ("#microsoft.graph.referenceAttachment", False),
    }
    pdf = next(a for a in atts if a["name"] == "a.pdf")
    assert base64.b64decode(pdf["contentBytes"]) == b"%PDF-1.4 x"
    assert (
        graph.call("GET", f"/me/messages/{msg['id']}/attachments/{pdf['id']}/$value").content
        == b"%PDF-1.4 x"
    )

    big = bytes(range(256)) * (5 * 1024 * 1024 // 256 + 7)  # a bit over 5 MB
    small = graph.call(
        "POST",
        f"/me/messages/{msg['id']}/attachments/createUploadSession",
        {"AttachmentItem": {"attachmentType": "file", "name": "x", "size": 100}},
    )
    assert small.json()["error"]["code"] == "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"
    session = graph.post(
        f"/me/messages/{msg['id']}/attachments/createUploadSession",
        {
            "AttachmentItem": {
                "attachmentType": "file",
                "name": "big.bin",
                "size": len(big),
                "contentType": "application/octet-stream",
            }
        },
    )
    assert session["nextExpectedRanges"] == ["0-"]
    upload = requests.Session()  # a pre-authenticated URL: no bearer token
    upload.mount("https://", graph.session.get_adapter("https://"))
    chunk = 4 * 1024 * 1024
    wrong = upload.put(
        session["uploadUrl"],
        data=big[10:20],
        headers={"Content-Range": f"bytes 10-19/{len(big)}"},
        timeout=30,
    )
    assert wrong.status_code == 416
    last: requests.Response | None = None
    for start in range(0, len(big), chunk):
        part = big[start : start + chunk]
        last = upload.put(
            session["uploadUrl"],
            data=part,
            headers={"Content-Range": f"bytes {start}-{start + len(part) - 1}/{len(big)}"},
            timeout=30,
        )
        if start + chunk < len(big):
            assert last.status_code == 200 and last.json()["nextExpectedRanges"] == [
                f"{start + len(part)}-"
            ]
    assert last is not None and last.status_code == 201
    att_id = last.headers["Location"].rsplit("/", 1)[1]
    assert graph.call("GET", f"/me/messages/{msg['id']}/attachments/{att_id}/$value").content == big
    too_big = graph.call(
        "POST",
        f"/me/messages/{msg['id']}/attachments",
        {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "b",
            "contentBytes": base64.b64encode(big).decode(),
        },
    )
    assert too_big.status_code == 413


# -- $batch, throttling, concurrency --------------------------------------------------------------
def test_batch_depends_on_and_partial_failure(graph: Graph) -> None:
    folder = graph.post("/me/contactFolders", {"displayName": "Salesforce Contacts"})
    requests_ = [
        {
            "id": "1",
            "method": "POST",
            "url": f"/me/contactFolders/{folder['id']}/contacts",
            "headers": {"Content-Type": "application/json"},
            "body": {"givenName": "Jane", "surname": "Cooper"},
        },
        {"id": "2", "method": "GET", "url": "/me/messages/AAMkMissing", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/me/mailFolders/inbox", "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": "/me?$select=mail"},
    ]
    response = graph.post("/$batch", {"requests": requests_}, status=200)
    by_id = {r["id"]: r for r in response["responses"]}
    assert by_id["1"]["status"] == 201 and by_id["1"]["body"]["displayName"] == "Jane Cooper"
    assert (
        by_id["2"]["status"] == 404 and by_id["2"]["body"]["error"]["code"] == "ErrorItemNotFound"
    )
    assert by_id["3"]["status"] == 424
    assert (
        by_id["4"]["status"] == 200
        and by_id["4"]["body"]["mail"] == "alex.morgan@northwind.example"
    )
    no_type = graph.post(
        "/$batch",
        {
            "requests": [
                {"id": "a", "method": "POST", "url": "/me/todo/lists", "body": {"displayName": "x"}}
            ]
        },
        status=200,
    )
    assert no_type["responses"][0]["status"] == 400
    too_many = graph.call(
        "POST",
        "/$batch",
        {"requests": [{"id": str(i), "method": "GET", "url": "/me"} for i in range(21)]},
    )
    assert too_many.status_code == 400
    assert graph.counters()["batch"] == 3
    assert graph.admin("microsoft/counters", method="GET")["batch_item"]["contacts"] == 1


def test_batch_subrequests_are_throttled_individually(graph: Graph) -> None:
    graph.admin(
        "faults", {"service": "microsoft", "throttle_rate": 0.5, "retry_after_s": 3, "seed": 7}
    )
    statuses: list[int] = []
    for _ in range(10):  # the batch call itself may be throttled too
        response = graph.call(
            "POST",
            "/$batch",
            {"requests": [{"id": str(i), "method": "GET", "url": "/me"} for i in range(20)]},
        )
        if response.status_code == 429:
            assert response.headers["Retry-After"] == "3"
            assert response.json()["error"]["code"] == "TooManyRequests"
            continue
        for sub in response.json()["responses"]:
            statuses.append(sub["status"])
            if sub["status"] == 429:
                assert sub["headers"]["Retry-After"] == "3"
    assert 429 in statuses and 200 in statuses


def test_fifth_concurrent_request_gets_mailbox_concurrency_429(graph: Graph) -> None:
    graph.admin("microsoft/settings", {"request_delay_ms": 1500})
    results: list[requests.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(5)

    def call() -> None:
        start.wait()
        response = graph.call("GET", "/me")
        with lock:
            results.append(response)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 200, 200, 200, 429]
    throttled = next(r for r in results if r.status_code == 429)
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.json()["error"]["code"] == "ApplicationThrottled"
    assert "MailboxConcurrency" in throttled.json()["error"]["message"]


def test_request_budget_per_ten_minutes(graph: Graph) -> None:
    graph.admin("microsoft/settings", {"requests_per_10_min": 3})
    assert [graph.call("GET", "/me").status_code for _ in range(3)] == [200, 200, 200]
    over = graph.call("GET", "/me")
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 500
    assert "MailboxRequestLimit" in over.json()["error"]["message"]


def test_state_persists_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "persist"
    with SandboxServer(data, seed="empty", factories=[MicrosoftService]) as server:
        service = server.service("microsoft")
        assert isinstance(service, MicrosoftService)
        service.deliver({"subject": "kept", "from": "a@b.example"})
    with SandboxServer(data, factories=[MicrosoftService]) as again:
        service = again.service("microsoft")
        assert isinstance(service, MicrosoftService)
        assert [m["subject"] for m in service.dump("messages")] == ["kept"]


# -- contacts, To Do ------------------------------------------------------------------------------
def test_contacts_crud_and_delta(graph: Graph) -> None:
    folder = graph.post("/me/contactFolders", {"displayName": "Salesforce Contacts"})
    assert (
        graph.call("POST", "/me/contactFolders", {"displayName": "Salesforce Contacts"}).status_code
        == 409
    )
    base = f"/me/contactFolders/{folder['id']}/contacts"
    made = [
        graph.post(
            base,
            {
                "givenName": f"G{i}",
                "surname": "S",
                "emailAddresses": [{"address": f"g{i}@x.example"}],
                "singleValueExtendedProperties": [{"id": SF_PROP, "value": f"003{i}"}],
            },
        )
        for i in range(3)
    ]
    items, link, _ = drain(graph, base + "/delta")
    assert {c["id"] for c in items} == {c["id"] for c in made}
    graph.call("PATCH", f"{base}/{made[0]['id']}", {"jobTitle": "CTO"})
    assert graph.call("DELETE", f"{base}/{made[1]['id']}").status_code == 204
    changes, _, _ = drain(graph, link)
    assert {c["id"]: ("@removed" in c) for c in changes} == {
        made[0]["id"]: False,
        made[1]["id"]: True,
    }
    got = graph.get(
        f"{base}/{made[2]['id']}?$expand=singleValueExtendedProperties($filter=id eq '{SF_PROP}')"
    )
    assert got["singleValueExtendedProperties"][0]["value"] == "0032"


def test_todo_lists_tasks_extensions_and_delta(graph: Graph) -> None:
    lists = graph.get("/me/todo/lists")["value"]
    assert [(x["displayName"], x["wellknownListName"]) for x in lists] == [("Tasks", "defaultList")]
    lst = graph.post("/me/todo/lists", {"displayName": "Salesforce Tasks"})
    base = f"/me/todo/lists/{lst['id']}/tasks"
    task = graph.post(
        base,
        {
            "title": "Call Jane",
            "dueDateTime": {"dateTime": "2026-12-01T00:00:00", "timeZone": "UTC"},
            "extensions": [
                {
                    "@odata.type": "microsoft.graph.openTypeExtension",
                    "extensionName": "com.scc.sync",
                    "sfId": "00T1",
                }
            ],
        },
    )
    items, link, _ = drain(graph, base + "/delta")
    assert [t["id"] for t in items] == [task["id"]]
    ext = graph.get(f"{base}/{task['id']}?$expand=extensions")["extensions"]
    assert ext[0]["extensionName"] == "com.scc.sync" and ext[0]["sfId"] == "00T1"
    done = graph.call("PATCH", f"{base}/{task['id']}", {"status": "completed"}).json()
    assert done["status"] == "completed" and "completedDateTime" in done
    changes, link, _ = drain(graph, link)
    assert [c["status"] for c in changes] == ["completed"]
    graph.call("DELETE", f"{base}/{task['id']}")
    changes, _, _ = drain(graph, link)
    assert changes == [
        {
            "@odata.type": "#microsoft.graph.task",
            "id": task["id"],
            "@removed": {"reason": "deleted"},
        }
    ]
    graph.admin("microsoft/invalidate_delta_tokens")
    gone = graph.call("GET", link)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "syncStateNotFound"


# -- calendar -------------------------------------------------------------------------------------
def test_events_crud_and_calendar_view_delta_across_dst(graph: Graph) -> None:
    # US DST ends on 2026-11-01: a 10:00 New York meeting is 14:00 UTC before and 15:00 UTC after.
    series = graph.post(
        "/me/events",
        {
            "subject": "Weekly sync",
            "start": {"dateTime": "2026-10-19T10:00:00", "timeZone": "Eastern Standard Time"},
            "end": {"dateTime": "2026-10-19T10:30:00", "timeZone": "Eastern Standard Time"},
            "attendees": [
                {
                    "emailAddress": {"address": "jane.cooper@acme.example", "name": "Jane Cooper"},
                    "type": "required",
                }
            ],
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                "range": {"type": "endDate", "startDate": "2026-10-19", "endDate": "2026-11-16"},
            },
        },
    )
    assert series["type"] == "seriesMaster"
    single = graph.post(
        "/me/events",
        {
            "subject": "Dentist",
            "sensitivity": "private",
            "showAs": "oof",
            "start": {"dateTime": "2026-10-21T08:00:00", "timeZone": "America/Los_Angeles"},
            "end": {"dateTime": "2026-10-21T09:00:00", "timeZone": "America/Los_Angeles"},
        },
    )
    all_day = graph.post(
        "/me/events",
        {
            "subject": "Offsite",
            "isAllDay": True,
            "start": {"dateTime": "2026-10-23T00:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-10-24T00:00:00", "timeZone": "UTC"},
        },
    )
    bad_all_day = graph.call(
        "POST",
        "/me/events",
        {
            "subject": "x",
            "isAllDay": True,
            "start": {"dateTime": "2026-10-23T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-10-24T00:00:00", "timeZone": "UTC"},
        },
    )
    assert bad_all_day.status_code == 400
    window = "startDateTime=2026-10-15T00:00:00Z&endDateTime=2026-11-20T00:00:00Z"
    items, link, _ = drain(
        graph,
        f"/me/calendarView/delta?{window}",
        prefer='outlook.timezone="UTC", odata.maxpagesize=3',
    )
    occurrences = sorted(
        (e for e in items if e.get("type") == "occurrence"), key=lambda e: e["start"]["dateTime"]
    )
    assert [e["start"]["dateTime"][:16] for e in occurrences] == [
        "2026-10-19T14:00",
        "2026-10-26T14:00",
        "2026-11-02T15:00",
        "2026-11-09T15:00",
        "2026-11-16T15:00",
    ]
    assert all(
        e["seriesMasterId"] == series["id"] and e["start"]["timeZone"] == "UTC" for e in occurrences
    )
    assert occurrences[2]["originalStart"] == "2026-11-02T15:00:00Z"
    assert len({e["iCalUId"] for e in occurrences}) == 5
    assert {e["id"]: e["type"] for e in items if e["type"] == "singleInstance"} == {
        single["id"]: "singleInstance",
        all_day["id"]: "singleInstance",
    }
    dentist = next(e for e in items if e["id"] == single["id"])
    assert dentist["sensitivity"] == "private" and dentist["start"]["dateTime"].startswith(
        "2026-10-21T15:00"
    )

    # local zone requested: wall time stays 10:00 across the switch
    local, _, _ = drain(
        graph, f"/me/calendarView/delta?{window}", prefer='outlook.timezone="America/New_York"'
    )
    assert {e["start"]["dateTime"][11:16] for e in local if e.get("type") == "occurrence"} == {
        "10:00"
    }

    # an exception and a cancelled occurrence come back in the next round
    moved = graph.call(
        "PATCH",
        f"/me/events/{occurrences[1]['id']}",
        {
            "start": {"dateTime": "2026-10-26T11:00:00", "timeZone": "Eastern Standard Time"},
            "end": {"dateTime": "2026-10-26T11:30:00", "timeZone": "Eastern Standard Time"},
        },
    )
    assert moved.status_code == 200 and moved.json()["type"] == "exception"
    assert graph.call("DELETE", f"/me/events/{occurrences[3]['id']}").status_code == 204
    changes, link, calls = drain(graph, link)
    exception = next(e for e in changes if e.get("type") == "exception")
    assert exception["id"] == occurrences[1]["id"] and exception["start"]["dateTime"].startswith(
        "2026-10-26T15:00"
    )
    assert {"id": occurrences[3]["id"], "@removed": {"reason": "deleted"}} in changes
    # quiet round: one call
    quiet, link, calls = drain(graph, link)
    assert quiet == [] and calls == 1
    # deleting the series removes its occurrences
    graph.call("DELETE", f"/me/events/{series['id']}")
    changes, _, _ = drain(graph, link)
    removed = {e["id"] for e in changes if "@removed" in e}
    assert series["id"] in removed and {occurrences[0]["id"], occurrences[4]["id"]} <= removed


def test_recurrence_patterns() -> None:
    from scc_desktop.sandbox.microsoft.calendar import occurrence_starts, parse_instant

    def starts(recurrence: dict[str, Any]) -> list[str]:
        event = {
            "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2026-03-02T09:30:00", "timeZone": "W. Europe Standard Time"},
            "recurrence": recurrence,
        }
        found = occurrence_starts(
            event, parse_instant("2026-03-01T00:00:00Z"), parse_instant("2026-04-30T00:00:00Z")
        )
        return [s.strftime("%m-%dT%H:%M") for s in found]

    daily = {
        "pattern": {"type": "daily", "interval": 2},
        "range": {"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 3},
    }
    assert starts(daily) == ["03-02T08:00", "03-04T08:00", "03-06T08:00"]
    # every other week on Monday and Thursday; Berlin switches to summer time on 29 March
    weekly = {
        "pattern": {"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "thursday"]},
        "range": {"type": "endDate", "startDate": "2026-03-02", "endDate": "2026-04-02"},
    }
    assert starts(weekly) == [
        "03-02T08:00",
        "03-05T08:00",
        "03-16T08:00",
        "03-19T08:00",
        "03-30T07:00",
        "04-02T07:00",
    ]


# -- seeds ----------------------------------------------------------------------------------------
def test_demo_seed_has_the_cast(tmp_path: Path) -> None:
    with SandboxServer(tmp_path / "demo", seed="demo", factories=[MicrosoftService]) as server:
        service = server.service("microsoft")
        assert isinstance(service, MicrosoftService)
        messages = service.dump("messages")
        jane_thread = [m for m in messages if "Fleet renewal" in m["subject"]]
        assert len(jane_thread) == 3 and len({m["conversationId"] for m in jane_thread}) == 1
        senders = {m["from"]["emailAddress"]["address"] for m in messages}
        assert {
            "jane.cooper@acme.example",
            "priya.shah@northwind.example",
            "chris.jones1987@gmail.com",
            "ravi.kumar@hooli.example",
        } <= senders
        sent = service.graph.folder("sentitems").id
        assert any(m["parent"] == sent for m in messages)
        assert any(m["attachments"] for m in messages)
        events = service.dump("events")
        assert any(e["recurrence"] for e in events) and any(
            e["sensitivity"] == "private" for e in events
        )
        assert (
            any(e["isAllDay"] for e in events)
            and any(e["attendees"] for e in events)
            and any(not e["attendees"] for e in events)
        )
        assert len(service.dump("tasks")) >= 3
        contacts = service.dump("contacts")
        assert any("Salesforce" in c["categories"] for c in contacts)
        now = dt.datetime.now(dt.UTC)
        assert all(
            now - dt.timedelta(days=8) < dt.datetime.fromisoformat(m["receivedDateTime"]) <= now
            for m in messages
        )


def test_large_seed_is_fast(tmp_path: Path) -> None:
    with SandboxServer(tmp_path / "large", seed="empty", factories=[MicrosoftService]) as server:
        service = server.service("microsoft")
        assert isinstance(service, MicrosoftService)
        started = time.monotonic()
        service.reset("large", {})
        elapsed = time.monotonic() - started
        assert service.store.count("message") == 20_000 and service.store.count("contact") == 5_000
        assert elapsed < 10, elapsed


def test_quiet_delta_pass_costs_one_call_on_a_big_folder(graph: Graph) -> None:
    service = graph.server.service("microsoft")
    assert isinstance(service, MicrosoftService)
    _, old_link, _ = drain(graph, "/me/mailFolders/inbox/messages/delta")
    service.reset("large", {"messages": 3000, "contacts": 0})
    assert (
        graph.call("GET", old_link).status_code == 410
    )  # a reset kills delta tokens, not sign-ins
    inbox = graph.get("/me/mailFolders/inbox")
    assert inbox["totalItemCount"] == 2400
    url = "/me/mailFolders/inbox/messages/delta?$select=subject,receivedDateTime"
    items, link, calls = drain(graph, url, prefer="odata.maxpagesize=1000")
    assert len({m["id"] for m in items}) == 2400 and calls == 3
    graph.admin("counters/reset")
    quiet, _, calls = drain(graph, link, prefer="odata.maxpagesize=1000")
    assert quiet == [] and calls == 1
    assert graph.counters() == {"message_delta": 1, "total": 1}
