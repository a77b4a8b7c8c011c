"""Load the `dbt_like_sql/` folder as a graph of SQL models: templates, settings and dependencies (no Dagster here).

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

Errors name the file and, when jinja reports one, the line.
"""

from __future__ import annotations

import functools
import graphlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from orders_pipeline.analytics.raw_tables import SOURCES

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
