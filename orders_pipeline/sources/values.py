"""Column text → typed Arrow arrays for every source: vectorised when clean, value by value when messy, no crash.

A value that does not decode is kept as null and quarantined: the row says which field and its raw text.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Callable, Sequence
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc

from orders_pipeline.sources.columns import Column, Kind
from orders_pipeline.sources.raw_schema import MONEY

_TRUE_FALSE = {"true": True, "false": False, "1": True, "0": False}
_MAX_MONEY = Decimal(10) ** (MONEY.precision - MONEY.scale)
_CENT = Decimal(1).scaleb(-MONEY.scale)
_WHITESPACE = (  # what str.strip() strips (tests/test_parse.py checks the set against str.isspace)
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPACE = "[" + "".join(f"\\x{{{ord(char):x}}}" for char in _WHITESPACE) + "]"
_UNCLEAN_MEMBER = f"^$|^{_SPACE}|{_SPACE}$"  # RE2: a list member that _clean_list would strip or drop


def decode_timestamp(text: str) -> datetime | None:
    """An ISO 8601 instant in UTC from API text, undoing percent-encoding and stray whitespace; None if hopeless."""
    cleaned = text.strip()
    if "%" in cleaned:
        cleaned = unquote(cleaned).strip()
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def decode_money(text: str) -> Decimal | None:
    """A decimal amount with at most two places that fits the money type; None if not."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or abs(value) >= _MAX_MONEY or value != value.quantize(_CENT):
        return None
    return value.quantize(_CENT)


def decode_int(text: str) -> int | None:
    """A 32-bit integer from text, or None."""
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if -(2**31) <= value < 2**31 else None


def decode_bool(text: str) -> bool | None:
    """Boolean text (true/false/1/0, as xs:boolean and JSON write it) as a bool, or None."""
    return _TRUE_FALSE.get(text.strip().lower())


_DECODERS: dict[Kind, Callable[[str], Any]] = {
    Kind.TIMESTAMP: decode_timestamp,
    Kind.MONEY: decode_money,
    Kind.INT: decode_int,
    Kind.BOOL: decode_bool,
}


def text_order(columns: Sequence[Column]) -> list[int]:
    """The positions of the text (not list) columns, kind by kind: the order `convert_columns` takes their texts in."""
    by_kind = _positions_by_kind(tuple(columns))
    return [position for kind, positions in by_kind.items() if kind is not Kind.STRING_LIST for position in positions]


def convert_columns(
    columns: list[Column], texts: pa.Array, lists: dict[int, pa.Array], length: int
) -> tuple[list[pa.Array], list[pa.Array], int]:
    """Typed arrays for each column, the two quality-flag arrays, and the number of values quarantined.

    `texts` holds the `length` texts of each text column, one column after another in `text_order`; `lists` a
    list<string> array per list column.
    """
    quarantine: dict[int, list[str]] = {}
    if length == 0:
        return [pa.array([], column.kind.value) for column in columns], _quality_flags(quarantine, 0), 0
    text = _blank_to_null(pc.utf8_trim_whitespace(texts))  # every text column in one pass: Arrow calls cost per call
    converted: dict[int, pa.Array] = {}
    start = 0
    for kind, positions in _positions_by_kind(tuple(columns)).items():
        if kind is Kind.STRING_LIST:
            converted.update((position, _clean_lists(lists[position])) for position in positions)
            continue
        group = [columns[position] for position in positions]
        group_text = text.slice(start * length, len(positions) * length)
        converted.update(zip(positions, _convert_kind(kind, group, group_text, length, quarantine)))
        start += len(positions)
    arrays = [converted[position] for position in range(len(columns))]
    return arrays, _quality_flags(quarantine, length), sum(len(entry) for entry in quarantine.values())


def _quality_flags(quarantine: dict[int, list[str]], length: int) -> list[pa.Array]:
    """`is_quarantined` and `quarantined_fields` for every row; without a Python object per row on a clean batch."""
    if not quarantine:
        return [pa.repeat(pa.scalar(False), length), pa.nulls(length, pa.string())]
    flagged = [quarantine.get(row) for row in range(length)]
    return [
        pa.array([entry is not None for entry in flagged], pa.bool_()),
        pa.array(["; ".join(entry) if entry else None for entry in flagged], pa.string()),
    ]


@lru_cache(maxsize=8)
def _positions_by_kind(columns: tuple[Column, ...]) -> dict[Kind, list[int]]:
    positions: dict[Kind, list[int]] = {}
    for position, column in enumerate(columns):
        positions.setdefault(column.kind, []).append(position)
    return positions


def _convert_kind(
    kind: Kind, columns: list[Column], text: pa.Array, length: int, quarantine: dict[int, list[str]]
) -> list[pa.Array]:
    """All text columns of one kind (cleaned, end to end in `text`) typed in one cast."""
    texts = [text.slice(index * length, length) for index in range(len(columns))]
    if kind is Kind.STRING:
        return texts
    try:
        typed = text.cast(kind.value)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # only the failing columns go value by value
        return [_cast_text(column, column_text, quarantine) for column, column_text in zip(columns, texts)]
    return [typed.slice(index * length, length) for index in range(len(columns))]


def _cast_text(column: Column, text: pa.Array, quarantine: dict[int, list[str]]) -> pa.Array:
    try:
        return text.cast(column.kind.value)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _convert_one_by_one(column, text.to_pylist(), quarantine)


def _convert_one_by_one(column: Column, texts: list[str | None], quarantine: dict[int, list[str]]) -> pa.Array:
    decode = _DECODERS[column.kind]
    decoded = []
    for row, text in enumerate(texts):
        value = decode(text) if text is not None else None
        if text is not None and value is None:
            quarantine.setdefault(row, []).append(f"{column.name}={text[:64]}")
        decoded.append(value)
    return pa.array(decoded, column.kind.value)


def _blank_to_null(text: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _clean_lists(lists: pa.ListArray) -> pa.Array:
    """Each list with its members stripped and blank ones dropped; the array itself when that changes nothing."""
    members = lists.flatten()
    if members.null_count == 0 and not pc.any(pc.match_substring_regex(members, _UNCLEAN_MEMBER)).as_py():
        return lists
    return pa.array([value and _clean_list(value) for value in lists.to_pylist()], lists.type)


def _clean_list(value: list[str | None]) -> list[str]:
    return [member.strip() for member in value if member and member.strip()]
