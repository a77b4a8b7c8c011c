"""What the command prints and returns: exit codes, plain values and aligned tables."""

from __future__ import annotations

from datetime import datetime, timezone

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3


def aligned_table(rows: list[list[str]], header: tuple[str, ...]) -> str:
    """Rows under a header, each column as wide as its widest cell, indented two spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  " + "  ".join(f"{name:<{width}}" for name, width in zip(header, widths)).rstrip()]
    lines += ["  " + "  ".join(f"{cell!s:<{width}}" for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def plain(value: object) -> str:
    """A value as the terminal shows it: UTC instants with Z, missing ones as -."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "-" if value is None else str(value)
