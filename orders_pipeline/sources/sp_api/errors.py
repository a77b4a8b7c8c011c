"""Typed errors of the SP-API client, each one readable line naming cause, Amazon's RequestId and the fix.

Messages are built only from Amazon's error code and message, the RequestId and the operation name, with every
known secret (client secret, refresh token, access token) masked should a server echo one back.
"""

from __future__ import annotations

from orders_pipeline.sources.api_error import ApiCallError

import json
import re

__all__ = [
    "SpApiError",
    "SpApiConfigurationError",
    "SpApiConnectionError",
    "SpApiResponseFormatError",
    "SpApiReportError",
    "SpApiApiError",
    "SpApiAuthError",
    "SpApiThrottledError",
    "SpApiServerError",
    "SpApiRequestError",
    "error_from_response",
    "one_line",
]

_MAX_MESSAGE_CHARS = 500


class SpApiError(Exception):
    """Base of every error the SP-API client raises; str() is one line naming cause and fix."""


class SpApiConfigurationError(SpApiError):
    """Bad endpoint or token URL, missing credentials, plain http to a non-loopback host, no marketplace."""


class SpApiConnectionError(SpApiError):
    """The endpoint could not be reached (refused, reset, timed out) after all retries."""


class SpApiResponseFormatError(SpApiError):
    """A body that is not the JSON expected: not JSON, too large, nested too deep, missing fields."""


class SpApiReportError(SpApiError):
    """A report ended CANCELLED or FATAL, or did not finish within the wait allowed."""


class SpApiApiError(SpApiError, ApiCallError):
    """An error answer of SP-API or LWA for one call."""

    api_name = "SP-API"
    request_id_name = "x-amzn-RequestId"


class SpApiAuthError(SpApiApiError):
    """Credentials refused: LWA invalid_client / invalid_grant, or 401/403 from SP-API."""

    default_fix = "check LWA_APP_ID, LWA_CLIENT_SECRET and SP_API_REFRESH_TOKEN"


class SpApiThrottledError(SpApiApiError):
    """429 QuotaExceeded more times in a row than the client allows."""

    default_fix = "another process spends this seller's quota; run one ingestion at a time"


class SpApiServerError(SpApiApiError):
    """500/503 that persisted after the retries."""

    default_fix = "SP-API is failing on its side; retry later"


class SpApiRequestError(SpApiApiError):
    """Any other 4xx: the request itself was refused (InvalidInput, NotFound, ...)."""


_LWA_FIXES = {
    "invalid_client": "check LWA_APP_ID / LWA_CLIENT_SECRET (the app's LWA credentials)",
    "unauthorized_client": "check LWA_APP_ID / LWA_CLIENT_SECRET (the app's LWA credentials)",
    "invalid_grant": "the refresh token is wrong or revoked: authorize the app again and set SP_API_REFRESH_TOKEN",
}


def one_line(text: str) -> str:
    """Whitespace collapsed to single spaces and the length capped: safe for a one-line message."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 3] + "..."


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _code_and_message(body: bytes) -> tuple[str | None, str | None]:
    """Amazon's `{"errors":[{code,message}]}` or LWA's `{"error","error_description"}`; (None, None) otherwise."""
    try:
        payload = json.loads(body[:65536]) if body.strip() else None
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(payload, dict):
        return None, None
    errors = payload.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return _text(first.get("code")), _text(first.get("message"))
    if "error" in payload:
        return _text(payload.get("error")), _text(payload.get("error_description"))
    return None, None


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, (str, int)) and str(value).strip() else None


def _classify(status: int, code: str, message: str) -> tuple[type[SpApiApiError], str | None]:
    if code in _LWA_FIXES:
        return SpApiAuthError, _LWA_FIXES[code]
    if status == 429 or code == "QuotaExceeded":
        return SpApiThrottledError, None
    if status >= 500:
        return SpApiServerError, None
    if status in (401, 403):
        if "expired" in message.lower():
            return SpApiAuthError, "the access token expired and a fresh one was refused too; check the machine clock"
        return SpApiAuthError, "check that the app has the orders role and the seller authorized it (SP_API_REFRESH_TOKEN)"
    if "marketplace" in message.lower():
        return SpApiRequestError, "check SP_API_MARKETPLACE_IDS (comma-separated ids the seller sells in)"
    if status == 404 and code != "NotFound":
        return SpApiRequestError, "check SP_API_ENDPOINT (a regional base URL such as https://sellingpartnerapi-na.amazon.com)"
    return SpApiRequestError, None


def error_from_response(
    status: int, body: bytes, operation: str, request_id: str | None = None, *, redact: tuple[str, ...] = ()
) -> SpApiApiError:
    """The typed error of an error answer; a body that is not Amazon's error JSON still yields a clear line."""
    secrets = tuple(secret for secret in redact if secret and len(secret) >= 4)
    code, message = _code_and_message(body)
    if code is None:
        code = {429: "QuotaExceeded", 503: "ServiceUnavailable"}.get(status, "InternalFailure" if status >= 500 else f"HTTP{status}")
        message = message or f"HTTP {status} without an SP-API error body"
    message = _redact(one_line(message or "(no message)"), secrets)
    code = _redact(one_line(code), secrets)
    cls, fix = _classify(status, code, message)
    return cls(code, message, request_id=request_id, http_status=status, operation=operation, fix=fix)
