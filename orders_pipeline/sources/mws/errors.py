"""Typed errors raised by the MWS client, each with one readable line naming cause and fix.

No message, repr or log line produced here ever contains a secret key, auth token, access key or
signature: messages are built only from Amazon's error code, message, RequestId and the operation name.
"""

from __future__ import annotations

from orders_pipeline.sources.api_error import ApiCallError

__all__ = [
    "MwsError",
    "MwsConfigurationError",
    "MwsConnectionError",
    "MwsResponseFormatError",
    "MwsApiError",
    "MwsAuthError",
    "MwsThrottledError",
    "MwsServerError",
    "MwsRequestError",
    "MwsNextTokenError",
]


class MwsError(Exception):
    """Base of every error the client raises; str() is one readable line naming cause and fix."""


class MwsConfigurationError(MwsError):
    """Bad endpoint, missing credentials, plain http on a non-loopback host, bad marketplace list."""


class MwsConnectionError(MwsError):
    """The endpoint could not be reached (refused, reset, timed out) after all retries."""


class MwsResponseFormatError(MwsError):
    """The response body is not the XML we expect (not XML, truncated, unexpected root, missing element)."""


class MwsApiError(MwsError, ApiCallError):
    """An <ErrorResponse> (or an error status) returned by MWS for one call."""

    api_name = "MWS"


class MwsAuthError(MwsApiError):
    """Credentials rejected: SignatureDoesNotMatch, InvalidAccessKeyId/InvalidClientTokenId, AccessDenied."""

    default_fix = "check MWS_ACCESS_KEY_ID, MWS_SECRET_KEY, MWS_SELLER_ID and MWS_AUTH_TOKEN"


class MwsThrottledError(MwsApiError):
    """RequestThrottled / QuotaExceeded: the call was refused because the quota bucket was empty."""

    default_fix = "the client waits for the quota to restore; if this persists, another process shares this seller's quota"


class MwsServerError(MwsApiError):
    """5xx InternalError / ServiceUnavailable that persisted after retries."""

    default_fix = "MWS is failing on its side; retry later (check GetServiceStatus)"


class MwsRequestError(MwsApiError):
    """Any other 4xx: the request itself was invalid (InvalidParameterValue, InvalidAddress, ...)."""


class MwsNextTokenError(MwsApiError):
    """NextTokenCorrupted: the token cannot be re-used; restart from the operation that created it."""

    default_fix = "restart the listing from the original operation (do not re-send this NextToken)"
