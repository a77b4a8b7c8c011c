"""Typed errors raised by the MWS client, each with one readable line naming cause and fix.

No message, repr or log line produced here ever contains a secret key, auth token, access key or
signature: messages are built only from Amazon's error code, message, RequestId and the operation name.
"""

from __future__ import annotations

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


class MwsApiError(MwsError):
    """An <ErrorResponse> (or an error status) returned by MWS for one call."""

    #: hint appended to the message when no more specific fix is known
    default_fix = ""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        http_status: int = 0,
        operation: str = "",
        fix: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        self.http_status = http_status
        self.operation = operation
        self.fix = self.default_fix if fix is None else fix
        super().__init__(self._render())

    def _render(self) -> str:
        rid = f" (RequestId {self.request_id})" if self.request_id else ""
        status = f" [HTTP {self.http_status}]" if self.http_status else ""
        op = self.operation or "MWS call"
        text = f"{op} failed: {self.code}{rid}{status}: {self.message}".rstrip()
        if self.fix:
            text += f" -> {self.fix}"
        return text

    def __reduce__(self):  # keep pickling (multiprocess executors) working with keyword args
        return (
            _rebuild_api_error,
            (type(self), self.code, self.message, self.request_id, self.http_status, self.operation, self.fix),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, request_id={self.request_id!r}, "
            f"http_status={self.http_status!r}, operation={self.operation!r})"
        )


def _rebuild_api_error(cls, code, message, request_id, http_status, operation, fix):
    return cls(code, message, request_id=request_id, http_status=http_status, operation=operation, fix=fix)


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
