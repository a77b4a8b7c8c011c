"""The raw tables the SQL models read, and how to name their Parquet files in DuckDB SQL (no Dagster here)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from orders_pipeline.mws.schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA

PARTITION_COLUMN = pa.field("dt", pa.date32())
"""The hive partition column DuckDB adds to every raw row (`dt=YYYY-MM-DD`)."""


@dataclass(frozen=True)
class Source:
    """A raw table: where its partitions live under the data dir and its Arrow schema."""

    table: str
    schema: pa.Schema

    def glob(self, data_dir: Path) -> str:
        """The Parquet glob of every partition of this source."""
        return str(data_dir / self.table / "*" / "*.parquet")

    def has_data(self, data_dir: Path) -> bool:
        """Whether any partition of this source has landed."""
        return any((data_dir / self.table).glob("*/*.parquet"))


SOURCES: dict[tuple[str, str], Source] = {
    ("raw", "orders"): Source("orders", ORDERS_SCHEMA),
    ("raw", "order_items"): Source("order_items", ORDER_ITEMS_SCHEMA),
}


def sql_literal(text: str) -> str:
    """A SQL string literal, quotes doubled."""
    return "'" + text.replace("'", "''") + "'"


def date_list(dts: Iterable[str]) -> str:
    """ISO dates as a SQL list of DATE literals."""
    return ", ".join(f"date {sql_literal(dt)}" for dt in dts)


def empty_source_table(schema: pa.Schema) -> pa.Table:
    """An empty table with the raw schema, for a source with no partition yet."""
    return pa.table({f.name: pa.array([], f.type) for f in [*schema, PARTITION_COLUMN]})


def read_files(con: duckdb.DuckDBPyConnection, src: Source, files: list[str]) -> str:
    """A relation over some Parquet files of a raw table (typed and empty when there are none)."""
    if not files:
        name = f"__empty__{src.table}"
        con.register(name, empty_source_table(src.schema))
        return f'"{name}"'
    return (f"read_parquet([{', '.join(map(sql_literal, files))}], hive_partitioning = true, union_by_name = true, "
            f"hive_types = {{'dt': date}})")
