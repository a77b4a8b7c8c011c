"""The raw columns as every source sees them: a name and how its text becomes a typed value (no API's field names).

Derived from the shared raw schema (raw_schema.py), so the two cannot drift apart; each API folder says where a
column comes from in its own answers (sources/mws/schema.py: XML element paths).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pyarrow as pa

from orders_pipeline.sources.raw_schema import MONEY, ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA, QUALITY_FIELDS, TIMESTAMP


class Kind(Enum):
    """How the text of a value becomes a typed one (values.py decodes each kind)."""

    STRING = pa.string()
    TIMESTAMP = TIMESTAMP
    MONEY = MONEY
    INT = pa.int32()
    BOOL = pa.bool_()
    STRING_LIST = pa.list_(pa.string())


@dataclass(frozen=True)
class Column:
    """One output column of the raw schema: its name and its kind."""

    name: str
    kind: Kind


def _columns(schema: pa.Schema) -> list[Column]:
    """The data columns of a raw schema (its quality flags excluded), in order."""
    quality = {field.name for field in QUALITY_FIELDS}
    return [Column(field.name, Kind(field.type)) for field in schema if field.name not in quality]


ORDER_COLUMNS: list[Column] = _columns(ORDERS_SCHEMA)
ORDER_ITEM_COLUMNS: list[Column] = _columns(ORDER_ITEMS_SCHEMA)
