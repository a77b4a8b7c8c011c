"""Rows whose element values wait in their body's record XML until a builder reads many bodies at once."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

from orders_pipeline.mws.columnar import extract
from orders_pipeline.mws.schema import Column, Kind
from orders_pipeline.mws.walk import Row, read_record
from orders_pipeline.mws.xml import parse_xml


class RecordFragment:
    """The content of one body's records element (e.g. everything inside <Orders>), as bytes."""

    __slots__ = ("xml", "record_tag", "record_count")

    def __init__(self, xml: bytes, record_tag: str) -> None:
        self.xml = xml
        self.record_tag = record_tag
        self.record_count = 0


class FragmentRow(list):
    """A row holding only its context columns (no element path); its element values are in `fragment`."""

    __slots__ = ("fragment", "position")

    fragment: RecordFragment
    position: int


def raw_columns(columns: tuple[Column, ...], rows: Sequence[Row]) -> list[pa.Array]:
    """The raw text of every column of `rows`, in row order: fragments read in one pass, other rows as they are."""
    fragments: dict[int, RecordFragment] = {}
    for row in rows:
        if row.__class__ is FragmentRow:
            fragments.setdefault(id(row.fragment), row.fragment)
    batch = list(fragments.values())
    first, walked, fast = _read_fragments(columns, batch)
    fast_length = 0 if fast is None else len(next(array for array in fast if array is not None))
    slow_rows: list[Row] = []
    index = np.empty(len(rows), np.int64)
    for number, row in enumerate(rows):
        if row.__class__ is FragmentRow:
            key = id(row.fragment)
            if key in first:
                index[number] = first[key] + row.position
                continue
            row = _with_context(walked[key][row.position], row, columns)
        index[number] = fast_length + len(slow_rows)
        slow_rows.append(row)
    arrays = []
    for position, column in enumerate(columns):
        parts = []
        if fast is not None:
            parts.append(fast[position] if column.path else _context(rows, index, fast_length, position))
        if slow_rows or fast is None:
            parts.append(pa.array([row[position] for row in slow_rows], column.kind.value if column.kind is Kind.STRING_LIST else pa.string()))
        arrays.append(parts[0] if len(parts) == 1 else pa.concat_arrays(parts))
    if not slow_rows and fast_length == len(rows) and np.array_equal(index, np.arange(len(rows))):
        return arrays
    positions = pa.array(index)
    return [array.take(positions) for array in arrays]


def _read_fragments(columns: tuple[Column, ...], batch: list[RecordFragment]):
    """Where each readable fragment's records start in the fast arrays, the walked rows of the others, the arrays."""
    if not batch:
        return {}, {}, None
    extracted = extract([f.xml for f in batch], [f.record_count for f in batch], columns, batch[0].record_tag)
    first: dict[int, int] = {}
    walked: dict[int, list[Row]] = {}
    offset = 0
    for number, fragment in enumerate(batch):
        if number in extracted.unreadable:
            walked[id(fragment)] = _walk(fragment, columns)
        else:
            first[id(fragment)] = offset
            offset += fragment.record_count
    return first, walked, extracted.arrays if first else None


def _context(rows: Sequence[Row], index: np.ndarray, fast_length: int, position: int) -> pa.Array:
    """A context column for the fast records: each value from the row that points at that record."""
    values: list = [None] * fast_length
    for number, row in enumerate(rows):
        if index[number] < fast_length:
            values[index[number]] = row[position]
    return pa.array(values, pa.string())


def _walk(fragment: RecordFragment, columns: tuple[Column, ...]) -> list[Row]:
    """The fragment's records read by the reference Python walk."""
    container = parse_xml(b"<records>" + fragment.xml + b"</records>")
    return [read_record(record, columns) for record in container.iterchildren(fragment.record_tag)]


def _with_context(walked: Row, row: Row, columns: tuple[Column, ...]) -> Row:
    """The walked element values with the row's own context values."""
    return [row[position] if not column.path else walked[position] for position, column in enumerate(columns)]
