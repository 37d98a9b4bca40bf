"""A raw RFC 5322 / MIME message turned into what Graph would then return for it.

Exchange Online accepts almost anything a sending server hands it and stores the best reading of
it; Graph then serves that reading as JSON (always valid Unicode). This follows the same lenient
path: RFC 2047 words are decoded where they decode, a body is decoded with its declared charset
(unknown charsets as Latin-1, undecodable bytes replaced by U+FFFD), an HTML part wins over a
plain one as `body`, and every part with a file name (or `Content-Disposition: attachment`) is a
`fileAttachment` under the name it was given, hostile or not. A missing Message-ID gets one made
up, a missing or unreadable Date becomes the time of delivery. Used by the admin `deliver` call
(`{"mime": "<base64>"}`); see docs/sandbox-microsoft.md.
"""

from __future__ import annotations

import base64
import email
import email.policy
import uuid
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import Header, decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any


def _text(value: Any) -> str:
    """A header's decoded text; the raw text where RFC 2047 decoding fails."""
    if value is None:
        return ""
    if isinstance(value, Header):  # 8-bit bytes in a header (RFC 6532): read them as UTF-8
        out: list[str] = []
        for chunk, charset in decode_header(value):
            if isinstance(chunk, bytes):
                known = isinstance(charset, str) and charset != "unknown-8bit"
                try:
                    out.append(chunk.decode(str(charset) if known else "utf-8", "replace"))
                except LookupError:
                    out.append(chunk.decode("latin-1"))
            else:
                out.append(str(chunk))
        return _text("".join(out)) if not any("\ufffd" in c for c in out) else "".join(out)
    raw = str(value)
    try:
        return str(make_header(decode_header(raw)))
    except (LookupError, UnicodeError, ValueError, TypeError, AssertionError, HeaderParseError):
        return raw


def _charset_decode(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "us-ascii", errors="replace")
    except LookupError:  # an unknown charset: read it as Latin-1, as mail servers do
        return data.decode("latin-1")


def _payload_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        data = str(part.get_payload() or "").encode("utf-8", "replace")
    return _charset_decode(data, part.get_content_charset())


def _addresses(msg: Message, name: str) -> list[dict[str, Any]]:
    values = [_text(v) for v in msg.get_all(name, [])]
    out = []
    for display, address in getaddresses(values):
        if address or display:
            out.append({"emailAddress": {"name": display or address, "address": address}})
    return out


def _file_name(part: Message) -> str | None:
    name = part.get_filename()
    if name is None:
        raw = part.get_param("name")
        name = raw if isinstance(raw, str) else None
    return _text(name) if name is not None else None


def graph_fields(raw: bytes) -> dict[str, Any]:
    """The `deliver` body (Graph-shaped fields) for a raw message."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    text_body: str | None = None
    html_body: str | None = None
    attachments: list[dict[str, Any]] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = _file_name(part)
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        if name is not None or disposition == "attachment":
            data = part.get_payload(decode=True)
            content = data if isinstance(data, bytes) else b""
            attachments.append(
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": name or "attachment",
                    "contentType": part.get_content_type(),
                    "contentBytes": base64.b64encode(content).decode("ascii"),
                    "isInline": disposition == "inline" and bool(part.get("Content-ID")),
                    "contentId": (part.get("Content-ID") or "").strip("<>") or None,
                }
            )
            continue
        ctype = part.get_content_type()
        if ctype == "text/html" and html_body is None:
            html_body = _payload_text(part)
        elif ctype.startswith("text/") and text_body is None:
            text_body = _payload_text(part)
    try:
        when = parsedate_to_datetime(str(msg["Date"])) if msg["Date"] else None
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None or when.tzinfo is None:
        when = datetime.now(UTC)
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    message_id = str(msg["Message-ID"] or "").strip() or f"<{uuid.uuid4().hex}@sandbox.invalid>"
    body = (
        {"contentType": "html", "content": html_body}
        if html_body is not None
        else {"contentType": "text", "content": text_body or ""}
    )
    senders = _addresses(msg, "From")
    fields: dict[str, Any] = {
        "from": senders[0] if senders else {"emailAddress": {"name": "", "address": ""}},
        "to": _addresses(msg, "To"),
        "cc": _addresses(msg, "Cc"),
        "subject": _text(msg["Subject"]),
        "body": body,
        "internetMessageId": message_id,
        "receivedDateTime": stamp,
        "sentDateTime": stamp,
        "attachments": attachments,
    }
    if msg["In-Reply-To"]:
        fields["inReplyTo"] = str(msg["In-Reply-To"]).strip()
    if msg["References"]:
        fields["references"] = " ".join(str(msg["References"]).split())
    return fields
