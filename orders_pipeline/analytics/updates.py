"""The incremental half of a build: which unique_key values changed since a model's last update, and replacing them.

`IncrementalUpdates` is mixed into `build.Build`, whose session (connection, state store, snapshot, project) it
works in; it lives apart so each file stays one job: finding what changed and swapping it in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orders_pipeline.analytics import incremental
from orders_pipeline.analytics.project import Model, render_template
from orders_pipeline.analytics.raw_tables import ACCOUNT_COLUMN, PARTITION_COLUMN, SOURCES, read_files, sql_literal


@dataclass(frozen=True)
class Delta:
    """What an incremental update changed, as TEMP tables: the keys it recomputed, the reader keys of the rows it
    deleted, and the rows it inserted."""

    keys: str
    deleted: str
    inserted: str


class IncrementalUpdates:
    """Update a model's kept table by key (see `analytics/incremental.py`), for `build.Build`."""

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
        digest = incremental.sql_hash(
            f"{incremental.PARTITIONS}\n{model.unique_key}\n{model.incremental_strategy}\n{sql}\n{tail_template}"
        )
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
            partition_columns = {ACCOUNT_COLUMN.name, PARTITION_COLUMN.name}
            if model.unique_key not in SOURCES[src].schema.names or not partition_columns <= columns:
                return None, f"raw {table} changed and cannot be scoped by {model.unique_key}"
            files = self.snapshot().files(table, changed)
            parts.append(f"select {key} from {read_files(self.con, SOURCES[src], files)}")
            parts.append(f"select {key} from {target} where {incremental.partition_match(changed)}")
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
