"""Errors the simulator answers with, carrying Amazon's HTTP status, code and message."""

from __future__ import annotations


class MwsError(Exception):
    """A documented MWS error response."""

    def __init__(self, status: int, code: str, message: str, error_type: str = "Sender") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error_type = error_type


def invalid_parameter(message: str) -> MwsError:
    """400 InvalidParameterValue."""
    return MwsError(400, "InvalidParameterValue", message)


def next_token_corrupted() -> MwsError:
    """400 NextTokenCorrupted with Amazon's message."""
    return MwsError(
        400,
        "NextTokenCorrupted",
        "We could not decode your NextToken. Possible reasons include: a transmission error, "
        "improper quoting or a truncation problem.",
    )


def request_throttled() -> MwsError:
    """503 RequestThrottled with Amazon's message."""
    return MwsError(503, "RequestThrottled", "Request is throttled")
