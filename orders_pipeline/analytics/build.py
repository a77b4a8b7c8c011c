"""Build the models of a project in one DuckDB session, kept incrementally where they say so (no Dagster here).

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
  row for a value depends only on input rows with that value. The key is the unit of recompute, not the grain: it
  may be coarser (`amazon_order_id` where the grain is account and order: an order id two accounts share is
  recomputed, and replaced, in both). A first run, a changed SQL or setting, a missed
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

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from orders_pipeline.analytics import incremental
from orders_pipeline.analytics.project import Model, Project, SqlProjectError, load_project, render_template
from orders_pipeline.analytics.raw_tables import SOURCES, empty_source_table, sql_literal
from orders_pipeline.analytics.updates import Delta, IncrementalUpdates
from orders_pipeline.storage import files, layout

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


def execute_sql(con: duckdb.DuckDBPyConnection, label: str, sql: str) -> duckdb.DuckDBPyConnection:
    """Run SQL; a DuckDB error becomes `file:line: message` (lines of the rendered file match the source)."""
    try:
        return con.execute(sql)
    except duckdb.Error as error:
        message = str(error)
        match = re.search(r"LINE (\d+):", message)
        where = f"{label}:{match.group(1)}" if match else label
        raise SqlProjectError(f"{where}: {message}") from error


@dataclass
class Build(IncrementalUpdates):
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
            # orders before items: a day publishes its items first, so items pinned after the orders always hold
            # the items of every order version pinned (a re-ingest merges, so later items are a superset)
            self._snapshot = incremental.RawSnapshot(self.data_dir, ["orders", "order_items"])
        return self._snapshot

    def source_relation(self, source_name: str, table: str) -> str:
        """A raw table as this build reads it: a view over the snapshot's partitions, or an empty typed table when
        none had landed (one name whatever the snapshot, so a model's rendered SQL is the same from build to build)."""
        src = SOURCES[(source_name, table)]
        name = f"{source_name}__{table}"
        if name not in self._sources_read:
            if self.snapshot().fingerprints[src.table]:
                self.con.execute(f'create temp view "{name}" as select * from {src.relation(self.snapshot().root)}')
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


def build_models(
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
