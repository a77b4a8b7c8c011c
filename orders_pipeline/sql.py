"""Load the `dbt_like_sql/` folder as a graph of SQL models and build them in DuckDB (no Dagster here).

Every `.sql` file under the folder is a model named after its file stem. Models are jinja2 templates:

- `{{ source('raw', 'orders') }}` reads the hive-partitioned raw Parquet (or an empty, typed relation when no
  partition has landed yet) and declares a dependency on the raw table;
- `{{ ref('stg_orders') }}` reads another model and declares a dependency on it;
- `{{ var('stuck_after_days', 7) }}` is a setting: an explicit override, else the environment variable
  `ORDERS_VAR_STUCK_AFTER_DAYS`, else the default;
- `{{ config(materialized='view') }}` (as in dbt) makes the model a view; the default is 'table'.

A build runs the models in topological order in one in-memory DuckDB connection.

- A **table** model is computed once, written to `<data_dir>/<folder>/<model>.parquet` (COPY to a temporary
  file, then an atomic rename) and kept in memory for the models downstream of it in the same run; a later run
  that does not select it reads its Parquet file.
- A **view** model is never written. Within a run, a view read by two or more models of the run (or by queries
  announced with `reads`) is computed once into a TEMP table holding only the columns its readers take (DuckDB's
  own projection pushdown tells which, see `columns_read`); a view read once, or not at all, stays a TEMP view,
  computed inside its one reader with pushdown. A run that needs it without selecting it computes it inline from
  its own SQL (a view over the raw Parquet); and the warehouse file holds it as a real view (see `warehouse.py`).

Errors name the file and, when DuckDB or jinja report one, the line.
"""

from __future__ import annotations

import graphlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import pyarrow as pa

from orders_pipeline.mws.schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA
from orders_pipeline import storage

SQL_DIR = Path(__file__).resolve().parents[1] / "dbt_like_sql"
"""The repository's model folder."""

VAR_ENV_PREFIX = "ORDERS_VAR_"

MATERIALIZATIONS = ("table", "view")
"""What `{{ config(materialized=...) }}` accepts; 'table' is the default."""

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


class SqlProjectError(Exception):
    """A model folder that cannot be loaded or a model that cannot be built; the message names file and line."""


@dataclass(frozen=True)
class Model:
    """One `.sql` file: its name, layer (first folder), template text and declared dependencies."""

    name: str
    path: Path
    layer: str
    template: str
    refs: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]
    description: str
    materialized: str = "table"

    @property
    def is_view(self) -> bool:
        """Whether the model is computed, not written (config materialized=view)."""
        return self.materialized == "view"

    def output_path(self, data_dir: Path) -> Path:
        """Where a table model is published (a view model has no file)."""
        return Path(data_dir) / self.layer / f"{self.name}.parquet"


@dataclass
class Project:
    """All models of a folder, with their dependency order."""

    sql_dir: Path
    models: dict[str, Model]
    order: list[str]

    def upstream(self, name: str) -> tuple[str, ...]:
        """The models this one refs."""
        return self.models[name].refs

    def relpath(self, model: Model) -> str:
        """The model file relative to the project folder, for messages."""
        return str(model.path.relative_to(self.sql_dir.parent))


# --------------------------------------------------------------------------------------------- parsing


def _environment() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


def _header_comment(text: str) -> str:
    """The leading `--` comment block of a model: its description (grain and rules)."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            lines.append(stripped[2:].removeprefix(" ").rstrip())
        elif stripped or lines:
            break
    return "\n".join(lines).strip()


def _line_of(text: str, pattern: str) -> int | None:
    match = re.search(pattern, text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _template_error(label: str, error: Exception) -> SqlProjectError:
    line = getattr(error, "lineno", None)
    tb = error.__traceback__
    while tb is not None:  # jinja maps the frames of template code to template lines
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f"{label}:{line}" if line else label
    return SqlProjectError(f"{where}: {type(error).__name__}: {error}")


def _parse(path: Path, sql_dir: Path, env: jinja2.Environment) -> Model:
    """Render once with capturing `ref`/`source`/`var` to find what the file depends on."""
    text = path.read_text()
    label = str(path.relative_to(sql_dir.parent))
    refs: list[str] = []
    sources: list[tuple[str, str]] = []

    def ref(name: str) -> str:
        refs.append(name)
        return f'"{name}"'

    def source(source_name: str, table: str) -> str:
        if (source_name, table) not in SOURCES:
            known = ", ".join(f"{s}.{t}" for s, t in SOURCES)
            line = _line_of(text, rf"source\(\s*['\"]{re.escape(source_name)}['\"]\s*,\s*['\"]{re.escape(table)}")
            raise SqlProjectError(f"{label}:{line}: unknown source {source_name}.{table} (known: {known})")
        sources.append((source_name, table))
        return f'"{source_name}__{table}"'

    def var(name: str, default: Any = None) -> Any:
        return default if default is not None else 0

    config: dict[str, Any] = {}

    def capture_config(**settings: Any) -> str:
        unknown = set(settings) - {"materialized"}
        line = _line_of(text, r"config\(")
        if unknown:
            raise SqlProjectError(f"{label}:{line}: config() accepts only materialized= (got {', '.join(sorted(unknown))})")
        if settings.get("materialized", "table") not in MATERIALIZATIONS:
            raise SqlProjectError(
                f"{label}:{line}: materialized={settings['materialized']!r} is not one of {', '.join(MATERIALIZATIONS)}"
            )
        config.update(settings)
        return ""

    try:
        env.from_string(text).render(ref=ref, source=source, var=var, config=capture_config)
    except SqlProjectError:
        raise
    except jinja2.TemplateError as error:
        raise _template_error(label, error) from error
    layer = path.relative_to(sql_dir).parts[0] if len(path.relative_to(sql_dir).parts) > 1 else "models"
    return Model(
        name=path.stem,
        path=path,
        layer=layer,
        template=text,
        refs=tuple(dict.fromkeys(refs)),
        sources=tuple(dict.fromkeys(sources)),
        description=_header_comment(text),
        materialized=config.get("materialized", "table"),
    )


def load_project(sql_dir: Path | str = SQL_DIR) -> Project:
    """Parse every `.sql` file under `sql_dir`, check names and refs, and order the models topologically."""
    sql_dir = Path(sql_dir).resolve()
    env = _environment()
    models: dict[str, Model] = {}
    for path in sorted(sql_dir.rglob("*.sql")):
        model = _parse(path, sql_dir, env)
        if model.name in models:
            other = models[model.name].path.relative_to(sql_dir.parent)
            raise SqlProjectError(
                f"{path.relative_to(sql_dir.parent)}: model name {model.name!r} is already used by {other}"
            )
        models[model.name] = model

    for model in models.values():
        for name in model.refs:
            if name not in models:
                line = _line_of(model.template, rf"ref\(\s*['\"]{re.escape(name)}['\"]")
                raise SqlProjectError(
                    f"{model.path.relative_to(sql_dir.parent)}:{line}: ref({name!r}) names no model "
                    f"(known: {', '.join(sorted(models))})"
                )

    sorter = graphlib.TopologicalSorter({name: model.refs for name, model in models.items()})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as error:
        cycle = error.args[1]
        files = " -> ".join(str(models[name].path.relative_to(sql_dir.parent)) for name in cycle)
        raise SqlProjectError(f"dependency cycle between models: {files}") from error
    return Project(sql_dir=sql_dir, models=models, order=order)


# --------------------------------------------------------------------------------------------- settings


def _coerce(raw: str, default: Any) -> Any:
    """An environment string as the type of the default (int, float, bool or str)."""
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def resolve_var(name: str, default: Any, overrides: Mapping[str, Any] | None = None) -> Any:
    """A model setting: `overrides[name]`, else `$ORDERS_VAR_<NAME>`, else the default."""
    if overrides and name in overrides:
        value = overrides[name]
        return _coerce(value, default) if isinstance(value, str) and default is not None else value
    env_value = os.environ.get(VAR_ENV_PREFIX + name.upper())
    if env_value is not None:
        return _coerce(env_value, default)
    if default is None:
        raise SqlProjectError(f"var({name!r}) has no default; set {VAR_ENV_PREFIX}{name.upper()} or pass it")
    return default


# --------------------------------------------------------------------------------------------- building


@dataclass
class ModelResult:
    """What one model build produced."""

    name: str
    path: Path | None  # the Parquet file of a table model; None for a view model
    row_count: int
    preview: Any  # pandas.DataFrame of the first rows; None for a view that stayed a view (not computed)
    sql: str  # the rendered model, as run
    materialized: str = "table"


def sql_literal(text: str) -> str:
    """A SQL string literal, quotes doubled."""
    return "'" + text.replace("'", "''") + "'"


def empty_source_table(schema: pa.Schema) -> pa.Table:
    """An empty table with the raw schema, for a source with no partition yet."""
    return pa.table({f.name: pa.array([], f.type) for f in [*schema, PARTITION_COLUMN]})


def render_template(
    text: str,
    label: str,
    ref: Callable[[str], str],
    source: Callable[[str, str], str],
    vars: Mapping[str, Any] | None = None,
) -> str:
    """Render a model template with the given `ref` and `source` resolvers; errors name the file and line."""
    try:
        return (
            _environment()
            .from_string(text)
            .render(
                ref=ref,
                source=source,
                var=lambda var_name, default=None: resolve_var(var_name, default, vars),
                config=lambda **settings: "",
            )
        )
    except SqlProjectError:
        raise
    except jinja2.TemplateError as error:
        raise _template_error(label, error) from error


PLACEHOLDER_OPTIMIZERS_OFF = "statistics_propagation,empty_result_pullup,filter_pushdown"
"""Optimizers that would hide what a query reads from an empty table: statistics of empty columns fold filters
and scans away, and a filter pushed into a scan lists its columns only as text."""


def _scanned_columns(plan: list | dict, table: str) -> set[str]:
    """The columns every scan of `table` in an EXPLAIN (FORMAT JSON) plan projects."""
    columns: set[str] = set()
    nodes = plan if isinstance(plan, list) else [plan]
    for node in nodes:
        info = node.get("extra_info", {})
        if isinstance(info, dict) and str(info.get("Table", "")).split(".")[-1].strip('"') == table:
            projections = info.get("Projections", [])
            columns.update([projections] if isinstance(projections, str) else projections)
        columns |= _scanned_columns(node.get("children", []), table)
    return columns


def execute_sql(con: duckdb.DuckDBPyConnection, label: str, sql: str) -> duckdb.DuckDBPyConnection:
    """Run SQL; a DuckDB error becomes `file:line: message` (lines of the rendered file match the source)."""
    try:
        return con.execute(sql)
    except duckdb.Error as error:
        message = str(error)
        match = re.search(r"LINE (\d+):", message)
        where = f"{label}:{match.group(1)}" if match else label
        raise SqlProjectError(f"{where}: {message}") from error


def columns_read(
    project: Project, readers: Mapping[str, Iterable[tuple[str, str]]], vars: Mapping[str, Any] | None = None
) -> dict[str, list[str]]:
    """For each model in `readers` (name -> the (label, SQL template) of the queries that read it), the columns
    those queries take from it, in the model's column order.

    The models are created as empty tables in a scratch connection (each when a query first refs it) and every
    reader is EXPLAINed there, so the answer is DuckDB's own projection pushdown: a column it missed would make
    the reader fail loudly, never return wrong rows."""
    scratch = duckdb.connect(":memory:")
    try:
        scratch.execute(f"set disabled_optimizers = '{PLACEHOLDER_OPTIMIZERS_OFF}'")
        created: set[str] = set()

        def source(source_name: str, table: str) -> str:
            name = f"{source_name}__{table}"
            if name not in created:
                scratch.register(name, empty_source_table(SOURCES[(source_name, table)].schema))
                created.add(name)
            return f'"{name}"'

        def ref(name: str) -> str:
            if name not in created:
                model = project.models[name]
                label = project.relpath(model)
                sql = render_template(model.template, label, ref, source, vars)
                execute_sql(scratch, label, f'create table "{name}" as {sql}\n')
                created.add(name)
            return f'"{name}"'

        used: dict[str, set[str]] = {}
        for name, queries in readers.items():
            ref(name)
            used[name] = set()
            for label, template in queries:
                sql = render_template(template, label, ref, source, vars)
                ((_, plan),) = execute_sql(scratch, label, f"explain (format json) {sql}").fetchall()
                used[name] |= _scanned_columns(json.loads(plan), name)
        read: dict[str, list[str]] = {}
        for name, columns_used in used.items():
            columns = [row[0] for row in scratch.execute(f'describe "{name}"').fetchall()]
            read[name] = [column for column in columns if column in columns_used] or columns[:1]
        return read
    finally:
        scratch.close()


@dataclass
class Build:
    """One DuckDB session that builds models of a project into a data dir.

    Use as a context manager; `run(names)` builds the named models in dependency order.
    """

    project: Project
    data_dir: Path
    vars: Mapping[str, Any] = field(default_factory=dict)
    threads: int | None = None
    con: duckdb.DuckDBPyConnection = field(init=False)
    _in_memory: set[str] = field(init=False, default_factory=set)  # models computed by this session (tables)
    _attached: set[str] = field(init=False, default_factory=set)  # unselected models: Parquet views, inline views

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.con = duckdb.connect(":memory:")
        self.con.execute("set TimeZone = 'UTC'")
        self.con.execute("set preserve_insertion_order = false")
        if self.threads:
            self.con.execute(f"set threads = {int(self.threads)}")

    def __enter__(self) -> Build:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    # ----- relations

    def source_relation(self, source_name: str, table: str) -> str:
        """`read_parquet` over the landed partitions, or an empty typed table when none has landed."""
        src = SOURCES[(source_name, table)]
        if src.has_data(self.data_dir):
            return (
                f"read_parquet({sql_literal(src.glob(self.data_dir))}, hive_partitioning = true, "
                f"union_by_name = true, hive_types = {{'dt': date}})"
            )
        name = f"__empty_{source_name}__{table}"
        self.con.register(name, empty_source_table(src.schema))
        return f'"{name}"'

    def relation(self, name: str) -> str:
        """A model's relation: its table from this run; else, for a table model, a view over its Parquet file, and
        for a view model, a view of its own SQL (computed inline, from the raw Parquet and its own upstream)."""
        if name not in self._in_memory and name not in self._attached:
            model = self.project.models[name]
            if model.is_view:
                sql = self.render(name)
                self._drop(name)
                self.execute(self.project.relpath(model), f'create temp view "{name}" as {sql}\n')
            else:
                path = model.output_path(self.data_dir)
                if not path.exists():
                    raise SqlProjectError(
                        f"{self.project.relpath(model)}: {path} does not exist; build {name} first "
                        f"(it is upstream of the models selected)"
                    )
                self._drop(name)
                self.con.execute(f'create temp view "{name}" as select * from read_parquet({sql_literal(str(path))})')
            self._attached.add(name)
        return f'"{name}"'

    def _drop(self, name: str) -> None:
        """Remove whatever this session holds under the name (a table, or a view from `relation`)."""
        kinds = self.con.execute(
            "select 'table' from duckdb_tables() where table_name = $1"
            " union all select 'view' from duckdb_views() where view_name = $1 and not internal",
            [name],
        ).fetchall()
        for (kind,) in kinds:
            self.con.execute(f'drop {kind} if exists "{name}"')
        self._in_memory.discard(name)
        self._attached.discard(name)

    def render(self, name: str) -> str:
        """The model SQL with ref/source/var resolved for this build."""
        model = self.project.models[name]
        return self.render_text(model.template, self.project.relpath(model))

    def render_text(self, text: str, label: str) -> str:
        """Render any SQL template against this build (refs resolve to this run's tables, Parquet or inline views)."""
        return render_template(text, label, self.relation, self.source_relation, self.vars)

    # ----- execution

    def execute(self, label: str, sql: str) -> duckdb.DuckDBPyConnection:
        """Run SQL in this session; a DuckDB error becomes `file:line: message`."""
        return execute_sql(self.con, label, sql)

    def build_model(self, name: str, columns: list[str] | None = None, inline: bool = False) -> ModelResult:
        """Compute the model into a session table (same line numbers as the file); publish a table model as Parquet
        atomically. A view model becomes a TEMP table of this session (of `columns` only, when given) read by the
        models downstream of it, or with `inline` a TEMP view that its one reader computes."""
        model = self.project.models[name]
        label = self.project.relpath(model)
        sql = self.render(name)
        self._drop(name)  # a view over the old Parquet or an inline view, from a query before the run
        # The prefix stays on the file's first line, so DuckDB's LINE n is the file's line n.
        if inline:
            self.execute(label, f'create temp view "{name}" as {sql}\n')
        elif columns is not None:
            selected = ", ".join(f'"{column}"' for column in columns)
            self.execute(label, f'create temp table "{name}" as select {selected} from ({sql}\n)')
        else:
            self.execute(label, f'create {"temp " if model.is_view else ""}table "{name}" as {sql}\n')
        self._in_memory.add(name)
        out = None
        if not model.is_view:
            out = model.output_path(self.data_dir)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
            try:
                self.execute(label, f'copy "{name}" to {sql_literal(str(tmp))} (format parquet)')
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
        ((row_count,),) = self.con.execute(f'select count(*) from "{name}"').fetchall()
        preview = None if inline else self.con.execute(f'select * from "{name}" limit 10').df()
        return ModelResult(name=name, path=out, row_count=row_count, preview=preview, sql=sql,
                           materialized=model.materialized)

    def _refs_of(self, template: str, label: str) -> set[str]:
        """The models a SQL template refs."""
        refs: set[str] = set()

        def capture(name: str) -> str:
            refs.add(name)
            return f'"{name}"'

        render_template(template, label, capture, lambda source_name, table: '"source"', self.vars)
        return refs

    def run(self, names: Iterable[str] | None = None, reads: Iterable[str] = ()) -> Iterable[ModelResult]:
        """Build the named models (default: all) in topological order, yielding each result as it is done.

        `reads` are the SQL templates that will query the session after the run (e.g. checks): the models they ref
        are kept, with the columns they read (`select *` keeps them all). Everything else is dropped once no later
        model of the run needs it, to keep memory flat.
        """
        selected = set(self.project.models if names is None else names)
        unknown = selected - set(self.project.models)
        if unknown:
            raise SqlProjectError(f"unknown models: {', '.join(sorted(unknown))}")
        order = [name for name in self.project.order if name in selected]
        later = [(f"<read {i + 1}>", template) for i, template in enumerate(reads)]
        later_refs = [self._refs_of(template, label) for label, template in later]
        keep = set().union(*later_refs)
        models = self.project.models
        readers = {  # each view of the run that may be narrowed -> the queries that read it, models first
            name: [(self.project.relpath(models[reader]), models[reader].template)
                   for reader in order if name in models[reader].refs]
            + [query for query, refs in zip(later, later_refs) if name in refs]
            for name in order if models[name].is_view
        }
        inline = {name for name, queries in readers.items() if len(queries) < 2}
        columns = columns_read(
            self.project, {name: queries for name, queries in readers.items() if name not in inline}, self.vars
        )
        position = {name: i for i, name in enumerate(order)}
        last_use = {name: len(order) if name in keep else i for i, name in enumerate(order)}
        for name in reversed(order):  # an inline view reads its upstream when its reader runs
            needed_until = last_use[name] if name in inline else position[name]
            for upstream in self.project.upstream(name):
                last_use[upstream] = max(last_use.get(upstream, needed_until), needed_until)
        for i, name in enumerate(order):
            yield self.build_model(name, columns.get(name), inline=name in inline)
            for done, last in list(last_use.items()):
                if last <= i and done in self._in_memory:
                    self._drop(done)
                    del last_use[done]

    def query(self, sql_template: str, label: str = "<query>") -> Any:
        """Run a SQL template (with `ref`/`source`/`var`) against this build and return a DataFrame."""
        return self.execute(label, self.render_text(sql_template, label)).df()


def build(
    data_dir: Path | str | None = None,
    select: Iterable[str] | None = None,
    vars: Mapping[str, Any] | None = None,
    project: Project | None = None,
) -> list[ModelResult]:
    """Build models (default: all) from what has landed in `data_dir` and return what was written."""
    project = project or load_project()
    root = Path(data_dir) if data_dir is not None else storage.data_dir()
    with Build(project, root, dict(vars or {})) as run:
        return list(run.run(select))
