"""Rebuild `<data_dir>/warehouse.duckdb`: views over the raw Parquet and the model Parquet files (no Dagster here).

The file only holds views with absolute paths, so it is tiny and cheap to rebuild. It is written to a temporary
file and renamed over the old one, so a user holding the old file open in the DuckDB CLI never blocks the
pipeline (they keep reading the old inode until they reconnect).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from orders_pipeline.sql import SOURCES, Project, empty_source_table, sql_literal

WAREHOUSE_FILE = "warehouse.duckdb"


def build_warehouse(data_dir: Path | str, project: Project) -> tuple[Path, list[str]]:
    """Write the warehouse file and return its path and the names of the relations it holds."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / WAREHOUSE_FILE
    tmp = data_dir / f".{WAREHOUSE_FILE}.{os.getpid()}.tmp"
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    names: list[str] = []
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute("set TimeZone = 'UTC'")
            for source in SOURCES.values():
                if source.has_data(data_dir):
                    con.execute(
                        f'create view "{source.table}" as select * from read_parquet('
                        f"{sql_literal(source.glob(data_dir))}, hive_partitioning = true, union_by_name = true, "
                        f"hive_types = {{'dt': date}})"
                    )
                else:  # nothing landed yet: an empty table with the contract's columns
                    con.register("__empty", empty_source_table(source.schema))
                    con.execute(f'create table "{source.table}" as select * from __empty')
                    con.unregister("__empty")
                names.append(source.table)
            for name in project.order:
                path = project.models[name].output_path(data_dir)
                if path.exists():
                    con.execute(f'create view "{name}" as select * from read_parquet({sql_literal(str(path))})')
                    names.append(name)
            con.execute("checkpoint")
        finally:
            con.close()
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    return target, names
