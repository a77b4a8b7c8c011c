"""Reading MWS request parameters: timestamps and enumerated lists (`Name.Member.N`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Mapping

from .errors import invalid_parameter


def parse_timestamp(name: str, value: str) -> datetime:
    """An ISO 8601 parameter as an aware UTC datetime (no zone means UTC, as python-amazon-mws sends)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_parameter(f"Invalid {name}: {value!r} is not an ISO 8601 date-time.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def member_list(params: Mapping[str, str], prefix: str) -> list[str]:
    """Values of `prefix.1`, `prefix.2`, … in index order."""
    found: list[tuple[int, str]] = []
    head = prefix + "."
    for key, value in params.items():
        if key.startswith(head):
            suffix = key[len(head) :]
            if not suffix.isdigit() or int(suffix) < 1:
                raise invalid_parameter(f"Invalid parameter name {key}.")
            found.append((int(suffix), value))
    return [value for _, value in sorted(found)]


def required(params: Mapping[str, str], name: str) -> str:
    """A parameter that must be present and non-empty."""
    value = params.get(name, "")
    if not value:
        raise invalid_parameter(f"Required parameter {name} not found or empty.")
    return value
