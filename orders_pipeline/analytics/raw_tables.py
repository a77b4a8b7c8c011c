"""The raw tables the SQL models read, and how to name their Parquet files in DuckDB SQL (no Dagster here).

A raw table has two layouts, possibly side by side in one data dir: `<table>/dt=D/*.parquet` (one seller account,
read as account 'default') and `<table>/account=NAME/dt=D/*.parquet` (one folder per account). DuckDB's hive
partitioning refuses files of mixed depth in one scan, so a relation over both is a union by name of one scan per
layout, and every row carries the `account` and `dt` columns either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from orders_pipeline.sources.accounts import DEFAULT_ACCOUNT  # the account of files directly under <table>/dt=D
from orders_pipeline.sources.raw_schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA

ACCOUNT_COLUMN = pa.field("account", pa.string())
"""The hive column of the account layout (`account=NAME`), added as 'default' to the flat layout."""

PARTITION_COLUMN = pa.field("dt", pa.date32())
"""The hive partition column DuckDB adds to every raw row (`dt=YYYY-MM-DD`)."""

ACCOUNT_PREFIX = "account="
DAY_PREFIX = "dt="
FLAT_FILES = f"{DAY_PREFIX}*/*.parquet"
ACCOUNT_FILES = f"{ACCOUNT_PREFIX}*/{DAY_PREFIX}*/*.parquet"


@dataclass(frozen=True)
class Source:
    """A raw table: where its partitions live under the data dir and its Arrow schema."""

    table: str
    schema: pa.Schema

    def has_data(self, data_dir: Path) -> bool:
        """Whether any partition of this source has landed."""
        base = Path(data_dir) / self.table
        return any(next(base.glob(pattern), None) for pattern in (FLAT_FILES, ACCOUNT_FILES))

    def relation(self, data_dir: Path) -> str:
        """SQL over every partition of this source by glob (so partitions that land later are read too), in the
        layouts present now; the source must have data."""
        base = Path(data_dir) / self.table
        flat, accounts = (sql_literal(str(base / pattern)) if next(base.glob(pattern), None) else None
                          for pattern in (FLAT_FILES, ACCOUNT_FILES))
        return _union(flat, accounts)


SOURCES: dict[tuple[str, str], Source] = {
    ("raw", "orders"): Source("orders", ORDERS_SCHEMA),
    ("raw", "order_items"): Source("order_items", ORDER_ITEMS_SCHEMA),
}


def sql_literal(text: str) -> str:
    """A SQL string literal, quotes doubled."""
    return "'" + text.replace("'", "''") + "'"


def partition_list(partitions: Iterable[tuple[str, str]]) -> str:
    """(account, ISO date) pairs as a SQL list for `(account, dt) in (...)`."""
    return ", ".join(f"({sql_literal(account)}, date {sql_literal(dt)})" for account, dt in partitions)


def empty_source_table(schema: pa.Schema) -> pa.Table:
    """An empty table with the raw schema, for a source with no partition yet."""
    return pa.table({f.name: pa.array([], f.type) for f in [*schema, ACCOUNT_COLUMN, PARTITION_COLUMN]})


def is_account_file(path: str) -> bool:
    """Whether a partition file lies in the account layout (`.../account=NAME/dt=D/file`)."""
    return Path(path).parent.parent.name.startswith(ACCOUNT_PREFIX)


def read_files(con: duckdb.DuckDBPyConnection, src: Source, files: list[str]) -> str:
    """A relation over some Parquet files of a raw table, of either layout (typed and empty when there are none)."""
    if not files:
        name = f"__empty__{src.table}"
        con.register(name, empty_source_table(src.schema))
        return f'"{name}"'
    flat = [path for path in files if not is_account_file(path)]
    accounts = [path for path in files if is_account_file(path)]
    return _union(_file_list(flat) if flat else None, _file_list(accounts) if accounts else None)


def _file_list(files: list[str]) -> str:
    return f"[{', '.join(map(sql_literal, files))}]"


def _union(flat: str | None, accounts: str | None) -> str:
    """The relation over the flat-layout and the account-layout files (each a SQL glob literal or file list, or
    None when that layout has none; at least one given)."""
    scans = []
    if flat:
        scans.append(f"select * exclude (dt), {sql_literal(DEFAULT_ACCOUNT)} as account, dt from read_parquet({flat}, "
                     "hive_partitioning = true, union_by_name = true, hive_types = {'dt': date})")
    if accounts:
        scans.append(f"select * from read_parquet({accounts}, hive_partitioning = true, union_by_name = true, "
                     "hive_types = {'account': varchar, 'dt': date})")
    assert scans, "a relation needs files"
    return "(" + " union all by name ".join(scans) + ")"
