"""The typed error for an MWS error answer: its <ErrorResponse> parsed (any namespace), classified and redacted."""

from __future__ import annotations

import re

from orders_pipeline.sources.mws.errors import (
    MwsApiError,
    MwsAuthError,
    MwsNextTokenError,
    MwsRequestError,
    MwsServerError,
    MwsThrottledError,
)
from orders_pipeline.sources.mws.xml import parse_xml


_AUTH_FIXES = {
    "SignatureDoesNotMatch": "check MWS_SECRET_KEY",
    "InvalidAccessKeyId": "check MWS_ACCESS_KEY_ID",
    "InvalidClientTokenId": "check MWS_ACCESS_KEY_ID",
    "AccessDenied": "check MWS_SELLER_ID / MWS_AUTH_TOKEN and that the seller authorised this developer",
}
_THROTTLE_CODES = {"RequestThrottled", "QuotaExceeded"}
_NEXT_TOKEN_CODES = {"NextTokenCorrupted"}

_MAX_MESSAGE_CHARS = 500


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _child_text(elem, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            text = (child.text or "").strip()
            return text or None
    return None


def _one_line(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 3] + "..."
    return text


def _classify(status: int, code: str, message: str) -> tuple[type[MwsApiError], str | None]:
    """Pick the error class and the fix hint for an Amazon error code / HTTP status."""
    if code in _AUTH_FIXES:
        return MwsAuthError, _AUTH_FIXES[code]
    if code in _THROTTLE_CODES:
        return MwsThrottledError, None
    if code in _NEXT_TOKEN_CODES:
        return MwsNextTokenError, None
    if status >= 500 or code in {"InternalError", "ServiceUnavailable"}:
        return MwsServerError, None
    if status in (401, 403):
        return MwsAuthError, None
    if "marketplace" in message.lower():
        return MwsRequestError, "check MWS_MARKETPLACE_IDS (comma-separated ids the seller is registered in)"
    if code == "InvalidAddress" or status == 404 or 300 <= status < 400:
        return MwsRequestError, "check MWS_ENDPOINT (the client appends /Orders/2013-09-01)"
    if status == 400 and "expired" in message.lower():
        return MwsRequestError, "check the machine clock (requests must be within 15 minutes of MWS time)"
    return MwsRequestError, None


def _status_code(status: int) -> str:
    if status == 503:
        return "ServiceUnavailable"
    if status >= 500:
        return "InternalError"
    if status in (401, 403):
        return "AccessDenied" if status == 401 else "Forbidden"
    return f"HTTP{status}"


def _redact(text: str | None, secrets: tuple[str, ...]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def error_from_response(
    status: int,
    body: bytes,
    operation: str,
    request_id: str | None = None,
    *,
    redact: tuple[str, ...] | list[str] = (),
) -> MwsApiError:
    """Build the typed error for an MWS error answer.

    Parses ``<ErrorResponse>`` in any namespace (``RequestId`` or ``RequestID``); a body that is not
    XML (HTML error page from a proxy, empty body) still yields a clear error from the HTTP status.
    ``request_id`` (e.g. from the ``x-mws-request-id`` header) is used when the body carries none.
    Every string in ``redact`` (credentials, the request's signature) is masked should the server echo it.
    """
    secrets = tuple(s for s in redact if s and len(s) >= 4)
    code: str | None = None
    message: str | None = None
    body_request_id: str | None = None
    if body and body.strip():
        try:
            root = parse_xml(body)
        except Exception:  # noqa: BLE001 - any parse failure means "not an XML error body"
            root = None
        if root is not None and _local(root.tag) == "ErrorResponse":
            error_elem = next((c for c in root if _local(c.tag) == "Error"), None)
            if error_elem is not None:
                code = _child_text(error_elem, "Code")
                message = _child_text(error_elem, "Message")
            body_request_id = _child_text(root, "RequestId") or _child_text(root, "RequestID")
            if body_request_id is None:
                for meta in root:
                    if _local(meta.tag) == "ResponseMetadata":
                        body_request_id = _child_text(meta, "RequestId") or _child_text(meta, "RequestID")
        elif root is not None:
            message = f"unexpected <{_local(root.tag)}> error body"
    if code is None:
        code = _status_code(status)
        if message is None:
            message = f"HTTP {status} with a body that is not an MWS <ErrorResponse>"
    if message is None:
        message = "(no message)"
    message = _redact(_one_line(message), secrets) or ""
    code = _redact(code, secrets) or "Unknown"
    body_request_id = _redact(body_request_id, secrets)
    cls, fix = _classify(status, code, message)
    return cls(
        code,
        message,
        request_id=body_request_id or request_id,
        http_status=status,
        operation=operation,
        fix=fix,
    )
