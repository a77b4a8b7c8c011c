"""Column texts → a typed record batch of the shared raw schema, decoded and quarantined by sources/values.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa

from orders_pipeline.sources.columns import Column, Kind
from orders_pipeline.sources.values import convert_columns, text_order

_LIST = pa.list_(pa.string())

Texts = pa.Array | pa.ChunkedArray | Sequence


def typed_batch(
    columns: list[Column], schema: pa.Schema, texts: Mapping[str, Texts], length: int
) -> tuple[pa.RecordBatch, int]:
    """The batch of `length` rows whose column texts are `texts` (absent columns null); and the values quarantined."""
    lists = {
        position: _array(texts.get(column.name), _LIST, length)
        for position, column in enumerate(columns)
        if column.kind is Kind.STRING_LIST
    }
    ordered = [_array(texts.get(columns[position].name), pa.string(), length) for position in text_order(columns)]
    joined = pa.concat_arrays(ordered) if ordered else pa.array([], pa.string())
    arrays, flags, quarantined = convert_columns(columns, joined, lists, length)
    return pa.RecordBatch.from_arrays([*arrays, *flags], schema=schema), quarantined


def _array(values: Texts | None, kind: pa.DataType, length: int) -> pa.Array:
    if values is None:
        return pa.nulls(length, kind)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    array = values if isinstance(values, pa.Array) else pa.array(values, kind)
    return array.cast(kind) if array.type != kind else array
