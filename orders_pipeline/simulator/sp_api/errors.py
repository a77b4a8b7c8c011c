"""SP-API error answers: HTTP status plus one `{"errors": [{"code", "message"}]}` entry."""

from __future__ import annotations


class SpApiError(Exception):
    """A documented SP-API error response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        """The JSON error list Amazon answers with."""
        return {"errors": [{"code": self.code, "message": self.message}]}


def invalid_input(message: str) -> SpApiError:
    """400 InvalidInput."""
    return SpApiError(400, "InvalidInput", message)


def not_found(message: str) -> SpApiError:
    """404 NotFound."""
    return SpApiError(404, "NotFound", message)


def unauthorized(message: str = "Access to requested resource is denied.") -> SpApiError:
    """403 Unauthorized (a missing, unknown or expired access token)."""
    return SpApiError(403, "Unauthorized", message)


def token_expired() -> SpApiError:
    """403 Unauthorized with Amazon's expired-token message."""
    return unauthorized("The access token you provided has expired.")


def quota_exceeded() -> SpApiError:
    """429 QuotaExceeded."""
    return SpApiError(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
