"""Instants as both Amazon Orders APIs take them: UTC, ISO 8601, and never later than two minutes ago."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

TWO_MINUTES = timedelta(minutes=2)
"""How far before now a window's upper bound must stay (both APIs refuse a later LastUpdatedBefore)."""


def format_utc(moment: datetime) -> str:
    """ISO 8601 UTC with ``Z``; milliseconds only when non-zero (truncated, never rounded up)."""
    moment = as_utc(moment)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    ms = moment.microsecond // 1000
    return f"{base}.{ms:03d}Z" if ms else f"{base}Z"


def as_utc(moment: datetime) -> datetime:
    """Aware UTC datetime; a naive one is taken to be UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def truncate_ms(moment: datetime) -> datetime:
    """The moment without its sub-millisecond part (both APIs take and echo milliseconds at most)."""
    return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)
