"""The `dbt_like_sql/` models as Dagster assets (group `analytics`), their checks and their automation.

One multi-asset holds every model plus the `warehouse` file: one process and one DuckDB connection build the
selected models in dependency order. Marts are published as Parquet; staging is never written as Parquet. An
incremental model (the staging models, the day-grained and the trend marts) is updated by key in the build's state
database, so a run recomputes only the orders and days that changed. The materialization of an unpublished model
records its rendered definition and row count, and the warehouse holds it as a view; an incremental model's says
how it was refreshed (`refresh`). A subset run reads unselected models from their kept table or Parquet, else inline.
The raw assets `orders` and `order_items` are upstream; when their partitions land, the automation sensor
refreshes the models.

Checks of severity ERROR are blocking: they run on each model's candidate before it is kept or published, and a
failure keeps the previous version, skips the models that read it and the warehouse, and fails the run. WARN
checks (stuck orders) run after the build and never block.
"""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from pydantic import Field

from orders_pipeline.analytics.project import Model, load_project
from orders_pipeline.analytics.build import Build, ModelResult
from orders_pipeline.storage import layout
from orders_pipeline.analytics.warehouse import build_warehouse
from orders_pipeline.defs.model_checks import CHECKS, check_result
from orders_pipeline.defs.object_store import publish_files, pulled_store

PROJECT = load_project()

GROUP = "analytics"
SOURCE_ASSET_KEYS = {("raw", "orders"): dg.AssetKey("orders"), ("raw", "order_items"): dg.AssetKey("order_items")}
WAREHOUSE_KEY = dg.AssetKey("warehouse")
ANALYTICS_POOL = "analytics"
"""Analytics runs take turns (one slot in dagster.yaml), so each updates the kept state of the one before."""

# Eager, but an unpartitioned model depending on daily partitions must not wait for *every* historic day to exist.
AUTOMATION = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())


class AnalyticsConfig(dg.Config):
    """Run settings; both default to the environment."""

    data_dir: str | None = Field(default=None, description="Root of raw and output data; default $ORDERS_DATA_DIR or ./data")
    vars: dict[str, str] = Field(
        default_factory=dict,
        description="Overrides of the models' var() settings, e.g. {'stuck_after_days': '10'} (else $ORDERS_VAR_<NAME>)",
    )
    full_refresh: bool = Field(
        default=False, description="Recompute the incremental models from scratch instead of updating them"
    )


# --------------------------------------------------------------------------------------------- assets


def _deps(model: Model) -> list[dg.AssetKey]:
    return [SOURCE_ASSET_KEYS[s] for s in model.sources] + [dg.AssetKey(name) for name in model.refs]


def _spec(model: Model) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=model.name,
        deps=_deps(model),
        description=model.description,
        group_name=GROUP,
        kinds={"duckdb", "sql", "parquet"} if model.is_published else {"duckdb", "sql"},
        tags={"layer": model.layer, "materialized": model.materialized},
        code_version=hashlib.sha256(model.template.encode()).hexdigest()[:12],
        metadata={"sql_file": PROJECT.relpath(model), "materialized": model.materialized},
        automation_condition=AUTOMATION,
        skippable=True,
    )


MODEL_SPECS = [_spec(PROJECT.models[name]) for name in PROJECT.order]
WAREHOUSE_SPEC = dg.AssetSpec(
    key=WAREHOUSE_KEY,
    deps=[spec.key for spec in MODEL_SPECS] + list(SOURCE_ASSET_KEYS.values()),
    description="warehouse.duckdb: views over the raw Parquet and every model, for `duckdb data/warehouse.duckdb`.",
    group_name=GROUP,
    kinds={"duckdb"},
    automation_condition=AUTOMATION,
    skippable=True,
)


@dg.multi_asset(
    name="analytics_models",
    specs=[*MODEL_SPECS, WAREHOUSE_SPEC],
    check_specs=[dg.AssetCheckSpec(c.name, asset=c.asset, description=c.description, blocking=c.blocking) for c in CHECKS],
    can_subset=True,
    pool=ANALYTICS_POOL,
)
def analytics_models(context: dg.AssetExecutionContext, config: AnalyticsConfig) -> Iterator[object]:
    """Build the selected SQL models in dependency order, each published only when its blocking checks pass on it,
    run the other checks, and refresh the warehouse unless a model was held back."""
    data_dir = Path(config.data_dir) if config.data_dir else layout.data_dir()
    store = None if config.data_dir else pulled_store(context.log, [layout.marts_dir(data_dir)], raw=True)
    selected = {key.path[-1] for key in context.selected_asset_keys}
    models = [name for name in PROJECT.order if name in selected]
    selected_checks = [check for check in CHECKS if check.key in context.selected_asset_check_keys]
    guards = {name: [check for check in selected_checks if check.blocking and check.asset == name] for name in models}
    built: set[str] = set()
    with Build(PROJECT, data_dir, config.vars, full_refresh=config.full_refresh) as build:
        runs = build.run(
            models,
            reads=[check.sql for check in selected_checks],
            guards={name: [check.guard for check in checks] for name, checks in guards.items()},
        )
        for result in runs:
            if result.rejected_by:
                context.log.error(_rejected_line(result, build.data_dir))
            else:
                built.add(result.name)
                publish_files(store, [result.path] if result.path else [], context.log)
                context.log.info(_built_line(result))
                yield dg.MaterializeResult(asset_key=result.name, metadata=_model_metadata(result, build.data_dir))
            for check in guards[result.name]:
                yield check_result(check, result.checks[check.name])
        held_back = [name for name in models if name not in built]
        if held_back:
            context.log.error(f"not published (a blocking check failed on them or on a model they read), and the "
                              f"warehouse not rebuilt: {', '.join(held_back)}")
        for check in selected_checks:
            if check not in guards.get(check.asset, []) and check.asset not in held_back:
                yield check_result(check, build.query(check.sql, label=f"check {check.asset}.{check.name}"))
    if WAREHOUSE_KEY in context.selected_asset_keys and not held_back:
        path, relations = build_warehouse(data_dir, PROJECT, config.vars)
        yield dg.MaterializeResult(asset_key=WAREHOUSE_KEY, metadata=_warehouse_metadata(path, relations))


def _rejected_line(result: ModelResult, data_dir: Path) -> str:
    """One line: which blocking checks stopped the model, and what stays published instead."""
    model = PROJECT.models[result.name]
    failed = ", ".join(f"{name} ({len(result.checks[name])} failing rows)" for name in result.rejected_by)
    kept = f"{model.output_path(data_dir)} keeps the previous build" if model.is_published else "its kept table stays as it was"
    return f"{result.name}: blocking check {failed}; {kept}, and the models that read it are not built"


def _built_line(result: ModelResult) -> str:
    """One log line per model: rows, where it went and, for an incremental model, how it was brought up to date."""
    where = f"-> {result.path}" if result.path is not None else f"({result.materialized}, not written)"
    refresh = f"; {result.refresh}" if result.refresh else ""
    return f"{result.name}: {result.row_count} rows {where}{refresh}"


def _model_metadata(result: ModelResult, data_dir: Path) -> dict[str, object]:
    """Row count, a preview, and the file (published) or the definition (unpublished) of one model."""
    metadata: dict[str, object] = {
        "dagster/row_count": result.row_count,
        "materialized": result.materialized,
        "data_dir": str(data_dir),
    }
    if result.refresh:
        metadata["refresh"] = result.refresh
    metadata["preview"] = dg.MetadataValue.md(result.preview.head(10).to_markdown(index=False))
    if result.path is None:
        metadata["definition"] = dg.MetadataValue.md(f"```sql\n{result.sql.strip()}\n```")
    else:
        metadata["path"] = dg.MetadataValue.path(str(result.path))
    return metadata


def _warehouse_metadata(path: Path, relations: list[str]) -> dict[str, object]:
    """Where the warehouse file is, what it holds and how to query it."""
    return {
        "path": dg.MetadataValue.path(str(path)),
        "relations": ", ".join(relations),
        "query": dg.MetadataValue.md(f"```\nduckdb {path} -c \"from sales_by_channel\"\n```"),
    }


analytics_assets: list[dg.AssetsDefinition] = [analytics_models]
analytics_sensors = [
    dg.AutomationConditionSensorDefinition(
        "analytics_automation",
        target=dg.AssetSelection.assets(*[spec.key for spec in MODEL_SPECS], WAREHOUSE_KEY),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
]
