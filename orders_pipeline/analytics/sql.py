"""Load the `dbt_like_sql/` folder as a graph of SQL models and build them in DuckDB (no Dagster here).

Every `.sql` file under the folder is a model named after its file stem. Models are jinja2 templates:

- `{{ source('raw', 'orders') }}` reads the hive-partitioned raw Parquet (or an empty, typed relation when no
  partition has landed yet) and declares a dependency on the raw table;
- `{{ ref('stg_orders') }}` reads another model and declares a dependency on it;
- `{{ var('stuck_after_days', 7) }}` is a setting: an explicit override, else the environment variable
  `ORDERS_VAR_STUCK_AFTER_DAYS`, else the default;
- `{{ config(materialized='incremental', unique_key='amazon_order_id') }}` (as in dbt) keeps the model's table
  between runs and updates it by key, `incremental_strategy='tail'` from the earliest changed key on
  (`lookback=N`: from N before it);
  `{% if is_incremental() %}` and `{{ recompute_from() }}` let a tail model's SQL read less. The default is
  'table'; `publish=false` keeps a model of either kind out of the Parquet files.

A build runs the models in topological order in one in-memory DuckDB connection. It reads the raw partitions as they
were when it first read one (`incremental.RawSnapshot`), so a partition that lands or is rewritten during the build is
left, whole, to the next build.

- A **table** model is computed once, written to `<data_dir>/<folder>/<model>.parquet` (COPY to a temporary
  file, then an atomic rename) and kept in memory for the models downstream of it in the same run; a later run
  that does not select it reads its Parquet file. An unpublished one is never written: a run that needs it
  without selecting it computes it inline from its own SQL, and the warehouse file holds it as a real view (see
  `warehouse.py`).
- An **incremental** model keeps its table in `<data_dir>/_state/models.duckdb` (see `incremental.py`). A run
  finds the unique_key values the changes since its last update touch: the values in raw partitions added,
  rewritten or removed since (and in its own rows from those partitions), and in the rows its incremental
  upstream models deleted or inserted in this run. It recomputes the model's SQL over only the input rows with
  those values, then deletes and inserts them in one transaction. So the SQL must be local in its key: an output
  row for a value depends only on input rows with that value. A first run, a changed SQL or setting, a missed
  upstream update or `full_refresh` recomputes everything. When another build holds the state database, the run
  computes the model like a table and does not keep it. Published, it is then written like a table.
- An incremental model with `incremental_strategy='tail'` reads only incremental models (no raw source) and suits
  a model of rolling windows over days. A run recomputes every row whose unique_key is at or after the earliest
  key value its upstream models changed in this run, less `lookback` (`recompute_from()`, a SQL literal), and rows
  with a null key. (`lookback=1` suits a row whose day can be the day before its upstream row's: a local day
  computed from a UTC one.)
  Its SQL sees the whole upstream models; inside `{% if is_incremental() %}` it may read only the days its
  windows need before `recompute_from()`. The rows it returns before that value are dropped.
- A **guard** is a blocking check of a model (`run(guards=...)`): SQL returning the rows that break a rule, run on
  the candidate model before it is kept or published (inside the kept table's transaction, before the Parquet
  rename). A row rolls the candidate back, so the kept table, its bookkeeping and the Parquet file stay as they
  were and the next run recomputes the same keys; the models of the run that read it are not built.

Errors name the file and, when DuckDB or jinja report one, the line.
"""

from __future__ import annotations

import functools
import graphlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from orders_pipeline.analytics import incremental
from orders_pipeline.storage import files, layout
from orders_pipeline.analytics.raw_tables import (
    PARTITION_COLUMN,
    SOURCES,
    date_list,
    empty_source_table,
    read_files,
    sql_literal,
)

SQL_DIR = Path(__file__).resolve().parents[2] / "dbt_like_sql"
"""The repository's model folder."""

VAR_ENV_PREFIX = "ORDERS_VAR_"

MATERIALIZATIONS = ("table", "incremental")
"""What `{{ config(materialized=...) }}` accepts; 'table' is the default."""

CONFIG_KEYS = {"materialized", "unique_key", "publish", "incremental_strategy", "lookback"}

INCREMENTAL_STRATEGIES = ("by_key", "tail")
"""How an incremental model finds the rows to recompute: the key values a change touches (default), or every key
from the earliest one an upstream model changed."""

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
    unique_key: str | None = None
    publish: bool = True
    incremental_strategy: str = "by_key"
    lookback: int = 0  # a tail model recomputes from this many key values before its upstream's earliest change

    @property
    def is_incremental(self) -> bool:
        """Whether the model keeps its table between runs and updates it by unique_key."""
        return self.materialized == "incremental"

    @property
    def is_tail(self) -> bool:
        """Whether an update recomputes every key from the earliest one its upstream models changed."""
        return self.is_incremental and self.incremental_strategy == "tail"

    @property
    def is_published(self) -> bool:
        """Whether the model is written to `<data_dir>/<layer>/<name>.parquet` (config publish, true by default)."""
        return self.publish

    def output_path(self, data_dir: Path) -> Path:
        """Where a published model is written."""
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


@functools.lru_cache(maxsize=256)
def _compiled(text: str) -> jinja2.Template:
    """A model template compiled once per process (a build renders each model more than once)."""
    return _environment().from_string(text)


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
        line = _line_of(text, r"config\(")
        _check_config(settings, f"{label}:{line}")
        config.update(settings)
        return ""

    try:
        env.from_string(text).render(ref=ref, source=source, var=var, config=capture_config,
                                     is_incremental=lambda: False, recompute_from=_outside_update(label))
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
        unique_key=config.get("unique_key"),
        publish=config.get("publish", True),
        incremental_strategy=config.get("incremental_strategy", "by_key"),
        lookback=config.get("lookback", 0),
    )


def _outside_update(label: str) -> Callable[[], str]:
    """`recompute_from()` for a render that is not a tail update: an error naming the file."""
    def recompute_from() -> str:
        raise SqlProjectError(f"{label}: recompute_from() is defined only inside {{% if is_incremental() %}}")
    return recompute_from


def _check_config(settings: dict[str, Any], where: str) -> None:
    """Refuse a config() call the loader would misread, naming the file and line."""
    unknown = set(settings) - CONFIG_KEYS
    if unknown:
        raise SqlProjectError(
            f"{where}: config() accepts only {', '.join(sorted(CONFIG_KEYS))} (got {', '.join(sorted(unknown))})"
        )
    materialized = settings.get("materialized", "table")
    if materialized not in MATERIALIZATIONS:
        hint = "; for a model that is not written, use publish=false" if materialized == "view" else ""
        known = ", ".join(MATERIALIZATIONS)
        raise SqlProjectError(f"{where}: materialized={materialized!r} is not one of {known}{hint}")
    key = settings.get("unique_key")
    if materialized == "incremental" and not (isinstance(key, str) and key.isidentifier()):
        raise SqlProjectError(f"{where}: materialized='incremental' needs unique_key='<column>' (got {key!r})")
    if materialized != "incremental" and key is not None:
        raise SqlProjectError(f"{where}: unique_key applies to materialized='incremental' only")
    strategy = settings.get("incremental_strategy", "by_key")
    if strategy not in INCREMENTAL_STRATEGIES:
        raise SqlProjectError(
            f"{where}: incremental_strategy={strategy!r} is not one of {', '.join(INCREMENTAL_STRATEGIES)}"
        )
    if materialized != "incremental" and "incremental_strategy" in settings:
        raise SqlProjectError(f"{where}: incremental_strategy applies to materialized='incremental' only")
    lookback = settings.get("lookback", 0)
    if "lookback" in settings and strategy != "tail":
        raise SqlProjectError(f"{where}: lookback applies to incremental_strategy='tail' only")
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 0:
        raise SqlProjectError(f"{where}: lookback must be a whole number of key values, 0 or more (got {lookback!r})")
    if not isinstance(settings.get("publish", True), bool):
        raise SqlProjectError(f"{where}: publish must be true or false (got {settings['publish']!r})")


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
        if model.is_tail and model.sources:
            line = _line_of(model.template, r"source\(")
            raise SqlProjectError(
                f"{model.path.relative_to(sql_dir.parent)}:{line}: incremental_strategy='tail' reads incremental "
                f"models only, not source(); put the raw table behind an incremental model"
            )
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
    path: Path | None  # the Parquet file of a published model; None for an unpublished one
    row_count: int
    preview: Any  # pandas.DataFrame of the first rows
    sql: str  # the rendered model, as run
    materialized: str = "table"
    refresh: str = ""  # for an incremental model: how its table was brought up to date, and why
    checks: dict[str, Any] = field(default_factory=dict)  # guard name -> its failing rows (DataFrame) on the candidate

    @property
    def rejected_by(self) -> list[str]:
        """The guards that found rows: the model was neither kept nor published (see `ModelRejected`)."""
        return [name for name, rows in self.checks.items() if len(rows)]


@dataclass(frozen=True)
class Guard:
    """A blocking data test of a model: a SQL template returning the rows that break a rule (none: pass). It runs on
    the model's candidate table; a row keeps the candidate out of the kept state and the Parquet file."""

    name: str
    sql: str


class ModelRejected(Exception):
    """A guard found rows in a model's candidate: it was neither kept nor published (`result.rejected_by` says
    which guards, `result.checks` their rows)."""

    def __init__(self, result: ModelResult) -> None:
        super().__init__(f"{result.name}: rejected by {', '.join(result.rejected_by)}")
        self.result = result


def render_template(
    text: str,
    label: str,
    ref: Callable[[str], str],
    source: Callable[[str, str], str],
    vars: Mapping[str, Any] | None = None,
    recompute_from: str | None = None,
) -> str:
    """Render a model template with the given `ref` and `source` resolvers; errors name the file and line.
    `recompute_from` (a SQL literal) renders it for a tail update: `is_incremental()` is then true."""
    try:
        return _compiled(text).render(
            ref=ref,
            source=source,
            var=lambda var_name, default=None: resolve_var(var_name, default, vars),
            config=lambda **settings: "",
            is_incremental=lambda: recompute_from is not None,
            recompute_from=_outside_update(label) if recompute_from is None else lambda: recompute_from,
        )
    except SqlProjectError:
        raise
    except jinja2.TemplateError as error:
        raise _template_error(label, error) from error


def execute_sql(con: duckdb.DuckDBPyConnection, label: str, sql: str) -> duckdb.DuckDBPyConnection:
    """Run SQL; a DuckDB error becomes `file:line: message` (lines of the rendered file match the source)."""
    try:
        return con.execute(sql)
    except duckdb.Error as error:
        message = str(error)
        match = re.search(r"LINE (\d+):", message)
        where = f"{label}:{match.group(1)}" if match else label
        raise SqlProjectError(f"{where}: {message}") from error


@dataclass(frozen=True)
class Delta:
    """What an incremental update changed, as TEMP tables: the keys it recomputed, the reader keys of the rows it
    deleted, and the rows it inserted."""

    keys: str
    deleted: str
    inserted: str


@dataclass
class Build:
    """One DuckDB session that builds models of a project into a data dir.

    Use as a context manager; `run(names)` builds the named models in dependency order.
    """

    project: Project
    data_dir: Path
    vars: Mapping[str, Any] = field(default_factory=dict)
    threads: int | None = None
    full_refresh: bool = False  # recompute incremental models from scratch
    con: duckdb.DuckDBPyConnection = field(init=False)
    _in_memory: set[str] = field(init=False, default_factory=set)  # models computed by this session (tables)
    _attached: set[str] = field(init=False, default_factory=set)  # unselected models: kept, Parquet or inline views
    _state: incremental.StateStore | None = field(init=False, default=None)
    _state_unavailable: str | None = field(init=False, default=None)  # why incremental models cannot persist
    _deltas: dict[str, Delta | None] = field(init=False, default_factory=dict)  # this run's updates (None: full)
    _indexes: incremental.PartitionIndexes | None = field(init=False, default=None)
    _snapshot: incremental.RawSnapshot | None = field(init=False, default=None)  # the raw partitions this build reads
    _sources_read: set[str] = field(init=False, default_factory=set)  # relations of raw tables over the snapshot

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
        if self._snapshot is not None:
            self._snapshot.close()

    # ----- relations

    def snapshot(self) -> incremental.RawSnapshot:
        """The raw partitions this build reads, pinned when it first reads one; every model reads and records them."""
        if self._snapshot is None:
            self._snapshot = incremental.RawSnapshot(self.data_dir, [src.table for src in SOURCES.values()])
        return self._snapshot

    def source_relation(self, source_name: str, table: str) -> str:
        """A raw table as this build reads it: a view over the snapshot's partitions, or an empty typed table when
        none had landed (one name whatever the snapshot, so a model's rendered SQL is the same from build to build)."""
        src = SOURCES[(source_name, table)]
        name = f"{source_name}__{table}"
        if name not in self._sources_read:
            if self.snapshot().fingerprints[src.table]:
                self.con.execute(
                    f'create temp view "{name}" as select * from read_parquet('
                    f"{sql_literal(src.glob(self.snapshot().root))}, hive_partitioning = true, union_by_name = true, "
                    f"hive_types = {{'dt': date}})"
                )
            else:
                self.con.register(name, empty_source_table(src.schema))
            self._sources_read.add(name)
        return f'"{name}"'

    def relation(self, name: str) -> str:
        """A model's relation: its table from this run; else an incremental model's kept table, a published model's
        Parquet file, or a view of the model's own SQL (computed inline, from the raw Parquet and its upstream)."""
        if name not in self._in_memory and name not in self._attached:
            model = self.project.models[name]
            if model.is_incremental and self._kept_table_is_current(name):
                self._drop(name)
                self.con.execute(f'create temp view "{name}" as select * from {incremental.kept_table(name)}')
            elif not model.is_published:
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
            f"select 'table' from duckdb_tables() where table_name = $1 and database_name <> '{incremental.STATE_CATALOG}'"
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

    def build_model(self, name: str, guards: Iterable[Guard] = ()) -> ModelResult:
        """Compute the model into a session table (same line numbers as the file), run its `guards` on it, and keep
        it and publish it as Parquet atomically (unless publish=false) only when none finds a row; else raise
        `ModelRejected`, and the kept table, the Parquet file and the session keep the previous version. An
        incremental model updates its kept table (see `_update_incremental`) or, when it cannot be kept, is computed
        like a table."""
        model = self.project.models[name]
        label = self.project.relpath(model)
        sql = self.render(name)
        self._drop(name)  # a view over the old Parquet or an inline view, from a query before the run
        refresh = ""
        kept = model.is_incremental and self.state() is not None
        failing: dict[str, Any] = {}

        def verify() -> None:
            """Make the candidate this session's relation of the model and run the guards on it."""
            if kept:
                self.con.execute(f'create temp view "{name}" as select * from {incremental.kept_table(name)}')
            self._in_memory.add(name)
            failing.update(self._failing_rows(name, guards))
            if any(len(rows) for rows in failing.values()):
                ((candidate_rows,),) = self.con.execute(f'select count(*) from "{name}"').fetchall()
                self._drop(name)
                raise ModelRejected(ModelResult(name=name, path=None, row_count=candidate_rows, preview=None, sql=sql,
                                                materialized=model.materialized, checks=failing))

        # The prefix stays on the file's first line, so DuckDB's LINE n is the file's line n.
        if kept:
            refresh = self._update_incremental(model, sql, verify)
        else:
            self.execute(label, f'create table "{name}" as {sql}\n')
            if model.is_incremental:
                refresh = f"full, not kept: {self._state_unavailable}"
        if not kept:
            verify()
        out = None
        if model.is_published:
            out = model.output_path(self.data_dir)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = files.temp_path(out.parent)  # unique: a concurrent build's temp file is never this one
            try:
                self.execute(label, f'copy "{name}" to {sql_literal(str(tmp))} (format parquet)')
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
        ((row_count,),) = self.con.execute(f'select count(*) from "{name}"').fetchall()
        preview = self.con.execute(f'select * from "{name}" limit 10').df()
        return ModelResult(name=name, path=out, row_count=row_count, preview=preview, sql=sql,
                           materialized=model.materialized, refresh=refresh, checks=failing)

    def _failing_rows(self, name: str, guards: Iterable[Guard]) -> dict[str, Any]:
        """Each guard's failing rows (a DataFrame) on this session's relation of the model."""
        return {guard.name: self.query(guard.sql, label=f"check {name}.{guard.name}") for guard in guards}

    # ----- incremental models

    def state(self) -> incremental.StateStore | None:
        """The attached state database, attaching it on first use; None when another build holds it."""
        if self._state is None and self._state_unavailable is None:
            path = incremental.state_path(self.data_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.con.execute(f"attach {sql_literal(str(path))} as {incremental.STATE_CATALOG}")
            except duckdb.IOException as error:  # the file lock of a concurrent build
                self._state_unavailable = f"{path} is in use ({str(error).splitlines()[0]})"
                return None
            self._state = incremental.StateStore(self.con)
            self._indexes = incremental.PartitionIndexes(self._state, self.snapshot())
        return self._state

    def _source_fingerprints(self, model: Model) -> dict[str, incremental.Fingerprint]:
        """The partitions of every raw table the model reads, as this build's snapshot holds them."""
        return {SOURCES[src].table: self.snapshot().fingerprints[SOURCES[src].table] for src in model.sources}

    def _kept_table_is_current(self, name: str) -> bool:
        """Whether the model's kept table reflects the snapshot's raw partitions and the kept tables it was computed
        from."""
        state = self.state()
        before = state.load(name) if state is not None else None
        if before is None:
            return False
        model = self.project.models[name]
        if before.sources != self._source_fingerprints(model):
            return False
        return all(
            before.upstream.get(ref) == state.version(ref) and self._kept_table_is_current(ref)
            for ref in model.refs if self.project.models[ref].is_incremental
        )

    def _update_incremental(self, model: Model, sql: str, verify: Callable[[], None]) -> str:
        """Bring the model's kept table up to date and say how: recompute only the unique_key values the changes
        since its last update touch (delete and insert them), else everything. `verify` runs on the updated table
        before the commit; when it raises, table and bookkeeping stay as they were. Records this run's `Delta` for
        incremental models downstream. A tail model recomputes the keys from its upstream's earliest change on."""
        state = self._state
        assert state is not None
        now = self._source_fingerprints(model)
        before = None if self.full_refresh else state.load(model.name)
        # a tail model's template too: its `is_incremental()` branch is not in the full SQL
        tail_template = model.template if model.is_tail else ""
        digest = incremental.sql_hash(f"{model.unique_key}\n{model.incremental_strategy}\n{sql}\n{tail_template}")
        upstream = {ref: state.version(ref) for ref in model.refs if self.project.models[ref].is_incremental}
        reason = self._full_refresh_reason(model, before, digest, upstream)
        keys = None
        if reason is None and not model.is_tail:
            assert before is not None
            keys, reason = self._affected_keys(model, before, now)
        version = (before.version if before else 0) + 1
        new_state = incremental.ModelState(digest, now, {ref: v for ref, v in upstream.items() if v is not None}, version)
        target = incremental.kept_table(model.name)
        label = self.project.relpath(model)
        if reason is not None:
            with incremental.transaction(self.con):
                self.execute(label, f"create or replace table {target} as {sql}\n")
                state.save(model.name, new_state)
                verify()
            self._deltas[model.name] = None
            return f"full: {reason}"
        key = f'"{model.unique_key}"'
        new = f"__inserted_{model.name}"
        scope = ""
        if model.is_tail:
            keys, start = self._tail_keys(model, new)
            scope = f", from {start} on" if start else ""
        assert keys is not None
        ((count,),) = self.con.execute(f'select count(*) from "{keys}"').fetchall()
        if not model.is_tail:
            scoped_sql = self._render_scoped(model, keys) if count else f"select * from {target} limit 0"
            self.execute(label, f'create or replace temp table "{new}" as {scoped_sql}\n')
        deleted = self._deleted_keys(model, keys)
        with incremental.transaction(self.con):
            self.con.execute(f'delete from {target} using "{keys}" where {target}.{key} is not distinct from "{keys}".{key}')
            self.execute(label, f'insert into {target} by name select * from "{new}"')
            state.save(model.name, new_state)
            verify()
        self.con.execute(f"checkpoint {incremental.STATE_CATALOG}")
        self._deltas[model.name] = Delta(keys, deleted, new)
        return f"incremental: {count} {model.unique_key} value(s) recomputed{scope}"

    def _tail_keys(self, model: Model, new: str) -> tuple[str, str | None]:
        """Compute a tail model's rows from its upstream's earliest change on into the TEMP table `new`; return the
        TEMP table of the keys to replace (those rows' keys and the kept ones from there on) and that first key."""
        target = incremental.kept_table(model.name)
        key = f'"{model.unique_key}"'
        earliest = self._earliest_change(model)
        start = f"cast({sql_literal(earliest[0])} as {earliest[1]})" if earliest else None
        in_tail = f"{key} >= {start} or {key} is null" if start else "false"
        if start:
            label = self.project.relpath(model)
            sql = render_template(model.template, label, self.relation, self.source_relation, self.vars, start)
            self.execute(label, f'create or replace temp table "{new}" as select * from ({sql}\n) where {in_tail}')
        else:
            self.con.execute(f'create or replace temp table "{new}" as select * from {target} limit 0')
        keys = f"__keys_{model.name}"
        self.con.execute(
            f'create or replace temp table "{keys}" as select distinct {key} from '
            f'(select {key} from {target} where {in_tail} union all select {key} from "{new}")'
        )
        return keys, earliest[0] if earliest else None

    def _earliest_change(self, model: Model) -> tuple[str, str] | None:
        """The least unique_key value the model's upstream models recomputed in this run, less the model's lookback
        (as text, and its type)."""
        least = []
        for ref in model.refs:
            delta = self._deltas.get(ref)
            if delta is not None:
                ref_key = f'"{self.project.models[ref].unique_key}"'
                least.append(f'(select min({ref_key}) from "{delta.keys}")')
        if not least:
            return None
        lookback = f" - {model.lookback}" if model.lookback else ""
        ((value, kind),) = self.execute(
            self.project.relpath(model),
            f"select cast(v as varchar), typeof(v) from (select least({', '.join(least)}){lookback} as v)",
        ).fetchall()
        return None if value is None else (value, kind)

    def _deleted_keys(self, model: Model, keys: str) -> str:
        """A TEMP table of the unique_key values of incremental readers (with other keys) in the rows about to be
        deleted: what those readers must recompute besides the inserted rows' values."""
        target = incremental.kept_table(model.name)
        columns = {row[0] for row in self.con.execute(f"describe {target}").fetchall()}
        reader_keys = sorted({
            reader.unique_key for reader in self.project.models.values()
            if reader.is_incremental and model.name in reader.refs and reader.unique_key != model.unique_key
            and reader.unique_key in columns
        })
        selected = ", ".join(f'"{column}"' for column in reader_keys) or f'"{model.unique_key}"'
        name = f"__deleted_{model.name}"
        rows = incremental.key_match(target, keys, model.unique_key) if reader_keys else "limit 0"
        self.con.execute(f'create or replace temp table "{name}" as select distinct {selected} from {target} {rows}')
        return name

    def _full_refresh_reason(
        self, model: Model, before: incremental.ModelState | None, digest: str, upstream: dict[str, int | None]
    ) -> str | None:
        """Why the model must be recomputed from scratch, or None when an update by key is enough."""
        if self.full_refresh:
            return "full refresh requested"
        if before is None:
            return "no kept table yet"
        if before.sql_hash != digest:
            return "its SQL or settings changed"
        for ref in model.refs:
            if not self.project.models[ref].is_incremental:
                return f"it reads {ref}, which is not incremental"
            seen = upstream[ref] - 1 if ref in self._deltas else upstream[ref]
            if ref in self._deltas and self._deltas[ref] is None:
                return f"{ref} was recomputed from scratch"
            if before.upstream.get(ref) != seen:
                return f"it missed an update of {ref}"
        return None

    def _affected_keys(
        self, model: Model, before: incremental.ModelState, now: dict[str, incremental.Fingerprint]
    ) -> tuple[str | None, str | None]:
        """A TEMP table of the unique_key values to recompute (its name), else (None, why they cannot be told): the
        values in the changed raw partitions, in this model's rows from those partitions, and in the deltas of its
        incremental upstream models in this run."""
        key = f'"{model.unique_key}"'
        target = incremental.kept_table(model.name)
        columns = {row[0] for row in self.con.execute(f"describe {target}").fetchall()}
        parts: list[str] = []
        for src in model.sources:
            table = SOURCES[src].table
            changed = incremental.changed_partitions(before.sources.get(table, {}), now[table])
            if not changed:
                continue
            if model.unique_key not in SOURCES[src].schema.names or PARTITION_COLUMN.name not in columns:
                return None, f"raw {table} changed and cannot be scoped by {model.unique_key}"
            files = self.snapshot().files(table, changed)
            parts.append(f"select {key} from {read_files(self.con, SOURCES[src], files)}")
            parts.append(f"select {key} from {target} where dt in ({date_list(changed)})")
        for ref in model.refs:
            delta = self._deltas.get(ref)
            if delta is None:
                continue
            if model.unique_key == self.project.models[ref].unique_key:
                parts.append(f'select {key} from "{delta.keys}"')
                continue
            ref_columns = {row[0] for row in self.con.execute(f'describe "{delta.inserted}"').fetchall()}
            if model.unique_key not in ref_columns:
                return None, f"{ref} changed and has no {model.unique_key} column"
            parts.extend(f'select {key} from "{table}"' for table in (delta.deleted, delta.inserted))
        name = f"__keys_{model.name}"
        body = " union ".join(parts) if parts else f"select {key} from {target} limit 0"
        self.con.execute(f'create or replace temp table "{name}" as select distinct {key} from ({body})')
        return name, None

    def _render_scoped(self, model: Model, keys: str) -> str:
        """The model's SQL over only the input rows whose unique_key is in `keys` (each input must have it); a raw
        table is read only in the partitions its partition index lists for those keys."""
        label = self.project.relpath(model)

        def scoped_source(source_name: str, table: str) -> str:
            src = SOURCES[(source_name, table)]
            assert self._indexes is not None
            dts = self._indexes.partitions_holding(src, model.unique_key, keys)
            return scoped(read_files(self.con, src, self.snapshot().files(src.table, dts)), table)

        def scoped(relation: str, input_name: str) -> str:
            view = f"__scoped_{model.name}__{input_name}"
            self.execute(label, f'create or replace temp view "{view}" as select scoped.* from {relation} as scoped '
                                f"{incremental.key_match('scoped', keys, model.unique_key)}")
            return f'"{view}"'

        return render_template(
            model.template,
            label,
            lambda name: scoped(self.relation(name), name),
            scoped_source,
            self.vars,
        )

    def _refs_of(self, template: str, label: str) -> set[str]:
        """The models a SQL template refs."""
        refs: set[str] = set()

        def capture(name: str) -> str:
            refs.add(name)
            return f'"{name}"'

        render_template(template, label, capture, lambda source_name, table: '"source"', self.vars)
        return refs

    def run(
        self, names: Iterable[str] | None = None, reads: Iterable[str] = (), guards: Mapping[str, Iterable[Guard]] | None = None
    ) -> Iterable[ModelResult]:
        """Build the named models (default: all) in topological order, yielding each result as it is done.

        `reads` are the SQL templates that will query the session after the run (e.g. checks): the models they ref
        are kept. Everything else is dropped once no later model of the run needs it, to keep memory flat.

        `guards` are each model's blocking checks (see `build_model`); a model is built after the models of the run
        its guards read. A model a guard rejected is yielded with `rejected_by`; the models of the run that read it,
        or whose guards do, are not built (nor yielded).
        """
        selected = set(self.project.models if names is None else names)
        unknown = selected - set(self.project.models)
        if unknown:
            raise SqlProjectError(f"unknown models: {', '.join(sorted(unknown))}")
        checks = {name: list((guards or {}).get(name, ())) for name in selected}
        needs = {
            name: set(self.project.upstream(name)).union(
                *(self._refs_of(guard.sql, f"check {name}.{guard.name}") for guard in checks[name])
            ) & selected - {name}
            for name in selected
        }
        order = self._run_order(needs)
        keep = set().union(*(self._refs_of(template, f"<read {i + 1}>") for i, template in enumerate(reads)))
        last_use = {name: len(order) if name in keep else i for i, name in enumerate(order)}
        for i, name in enumerate(order):
            for upstream in needs[name]:
                last_use[upstream] = max(last_use.get(upstream, i), i)
        rejected: set[str] = set()
        for i, name in enumerate(order):
            if needs[name] & rejected:
                rejected.add(name)
                continue
            try:
                result = self.build_model(name, guards=checks[name])
            except ModelRejected as rejection:
                rejected.add(name)
                result = rejection.result
            yield result
            for done, last in list(last_use.items()):
                if last <= i and done in self._in_memory:
                    self._drop(done)
                    del last_use[done]

    def _run_order(self, needs: Mapping[str, set[str]]) -> list[str]:
        """The models of `needs` in project order, each moved after the ones it needs (a cycle is an error)."""
        remaining = [name for name in self.project.order if name in needs]
        order: list[str] = []
        while remaining:
            ready = next((name for name in remaining if not needs[name] & set(remaining)), None)
            if ready is None:
                raise SqlProjectError(f"the checks of {', '.join(remaining)} read each other's models: a cycle")
            order.append(ready)
            remaining.remove(ready)
        return order

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
    root = Path(data_dir) if data_dir is not None else layout.data_dir()
    with Build(project, root, dict(vars or {})) as run:
        return list(run.run(select))
