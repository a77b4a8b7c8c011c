"""Rebuild `<data_dir>/warehouse.duckdb`: views over the raw Parquet and the models (no Dagster here).

A published model (a mart) is a view over its Parquet file; a model that is not published (staging: incremental
models kept only in the build's state database) is a real view whose SQL is the rendered model, over the
raw views, so `from stg_orders` computes the current orders from the raw Parquet when queried. A raw view reads
the layouts present when it is written (`dt=D` as account 'default', `account=NAME/dt=D`, see `raw_tables`) and
carries `account`, as every model does. The file only holds views with absolute paths, so it is tiny and cheap
to rebuild. It is written to a temporary file and renamed over the old one, so a user holding the old file open
in the DuckDB CLI never blocks the pipeline (they keep reading the old inode until they reconnect).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from orders_pipeline.analytics.raw_tables import SOURCES, empty_source_table, sql_literal
from orders_pipeline.analytics.project import Project, SqlProjectError, render_template
from orders_pipeline.storage.files import remove_abandoned_temp_files, temp_path

STORAGE_VERSION = "v1.0.0"  # readable by the `duckdb` CLI package (1.x) as well as by duckdb 2.x
WAREHOUSE_FILE = "warehouse.duckdb"


def view_sql(project: Project, name: str, vars: Mapping[str, Any] | None = None) -> str:
    """An unpublished model rendered for the warehouse: refs and sources name the warehouse's own relations."""
    model = project.models[name]
    return render_template(
        model.template,
        project.relpath(model),
        ref=lambda ref_name: f'"{ref_name}"',
        source=lambda source_name, table: f'"{SOURCES[(source_name, table)].table}"',
        vars=vars,
    )


def build_warehouse(
    data_dir: Path | str, project: Project, vars: Mapping[str, Any] | None = None
) -> tuple[Path, list[str]]:
    """Write the warehouse file and return its path and the names of the relations it holds.

    A published model is present once its Parquet file exists; any other once everything it refs is present."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / WAREHOUSE_FILE
    remove_abandoned_temp_files(data_dir)  # only files no live build can own: a concurrent build's stays
    tmp = temp_path(data_dir)
    names: list[str] = []
    try:
        con = duckdb.connect(str(tmp), config={"storage_compatibility_version": STORAGE_VERSION})
        try:
            con.execute("set TimeZone = 'UTC'")
            for source in SOURCES.values():
                if source.has_data(data_dir):
                    con.execute(f'create view "{source.table}" as select * from {source.relation(data_dir)}')
                else:  # nothing landed yet: an empty table with the contract's columns
                    con.register("__empty", empty_source_table(source.schema))
                    con.execute(f'create table "{source.table}" as select * from __empty')
                    con.unregister("__empty")
                names.append(source.table)
            for name in project.order:
                model = project.models[name]
                if not model.is_published:
                    if all(ref in names for ref in model.refs):
                        try:
                            con.execute(f'create view "{name}" as {view_sql(project, name, vars)}\n')
                        except duckdb.Error as error:
                            raise SqlProjectError(f"{project.relpath(model)}: {error}") from error
                        names.append(name)
                    continue
                path = model.output_path(data_dir)
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
