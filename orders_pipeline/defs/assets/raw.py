"""The raw daily-partitioned assets `orders` and `order_items`, fetched together from MWS and merged into the day."""

from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from orders_pipeline.sources.ingest import DayReport, ingest_day
from orders_pipeline.sources.raw_schema import ITEM_VERSION_KEY, ORDER_VERSION_KEY
from orders_pipeline.sources.mws.errors import MwsConnectionError, MwsError, MwsServerError, MwsThrottledError
from orders_pipeline.defs.partitions import daily_partitions
from orders_pipeline.defs.resources import ApiSource, MwsResource
from orders_pipeline.defs.sp_api_resource import SpApiResource
from orders_pipeline.sources.sp_api.errors import SpApiConnectionError, SpApiError, SpApiServerError, SpApiThrottledError
from orders_pipeline.storage.layout import data_dir, partition_dir, write_manifest
from orders_pipeline.storage.partitions import MergeCounts, UnreadablePartitionError
from orders_pipeline.storage.source_marker import MixedSourceError

MWS_POOL = "mws_api"  # one seller's API budget, whichever API ($ORDERS_SOURCE) spends it
SOURCE_ENV = "ORDERS_SOURCE"
RAW_GROUP = "mws_raw"

ORDERS = dg.AssetKey("orders")
ORDER_ITEMS = dg.AssetKey("order_items")

_raw_checks = [
    dg.AssetCheckSpec("no_quarantined_values", asset=ORDERS, description="Every value decoded; messy ones are kept as null and flagged."),
    dg.AssetCheckSpec("each_order_version_once", asset=ORDERS, blocking=True,
                      description="The published file holds each (amazon_order_id, last_update_date) once."),
    dg.AssetCheckSpec("holds_every_order_version_fetched", asset=ORDERS, blocking=True,
                      description="The published file holds every order version the API returned in this run, and the versions kept from before."),
    dg.AssetCheckSpec("each_item_version_once", asset=ORDER_ITEMS, blocking=True,
                      description="The published file holds each (amazon_order_id, order_item_id, order_last_update_date) once."),
    dg.AssetCheckSpec("items_have_their_order_version", asset=ORDER_ITEMS, blocking=True,
                      description="Every item row's order version (amazon_order_id, order_last_update_date) is in the day's orders."),
]


class IngestConfig(dg.Config):
    """How a partition run treats what the day already holds."""

    replace: bool = Field(
        default=False,
        description="Rebuild the day from this fetch alone, dropping versions stored by earlier runs (e.g. after "
        "fixing a parsing bug). Default false: merge, keeping every version observed before.",
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ORDERS,
            description="Every version of every order observed on MWS ListOrders, one UTC day of LastUpdateDate per "
            "partition; a re-run merges, so versions seen before are kept.",
            group_name=RAW_GROUP,
            kinds={"python", "parquet"},
            metadata={"path": "$ORDERS_DATA_DIR/orders/dt=YYYY-MM-DD/part-0.parquet"},
        ),
        dg.AssetSpec(
            ORDER_ITEMS,
            description="The items (ListOrderItems) of each order version in `orders`, same partitions.",
            group_name=RAW_GROUP,
            kinds={"python", "parquet"},
            metadata={"path": "$ORDERS_DATA_DIR/order_items/dt=YYYY-MM-DD/part-0.parquet"},
        ),
    ],
    check_specs=_raw_checks,
    partitions_def=daily_partitions,
    pool=MWS_POOL,
    retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
def mws_orders(
    context: dg.AssetExecutionContext, config: IngestConfig, mws: MwsResource, sp_api: SpApiResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Fetch the day's changed orders and their items from the chosen API and merge them into the day's partitions."""
    day = date.fromisoformat(context.partition_key)
    root = _usable_data_dir(day)
    chosen = _chosen_api(day, mws, sp_api)
    try:
        with chosen.open_source(writing_into=root) as (source, api):
            announce = context.log.warning if api.is_embedded_simulator else context.log.info
            announce(api.describe())
            report = ingest_day(source, day, root, replace=config.replace, progress=context.log.info)
    except (MwsError, SpApiError) as error:
        raise _failure(day, error) from None
    except (UnreadablePartitionError, MixedSourceError) as error:
        raise dg.Failure(description=f"Partition {day} not written: {error}", allow_retries=False) from None
    _write_manifests(root, report, api, context.run.run_id)
    context.log.info(_summary(report))
    yield dg.MaterializeResult(asset_key=ORDERS, metadata=_metadata(root, report, api, "orders"))
    yield dg.MaterializeResult(asset_key=ORDER_ITEMS, metadata=_metadata(root, report, api, "order_items"))
    yield from _check_results(root, report)


def _usable_data_dir(day: date) -> Path:
    """The data dir, checked before any API call: a bad ORDERS_DATA_DIR is a one-line failure, not worth a retry."""
    try:
        root = data_dir()
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}"
        probe.touch()
        probe.unlink()
    except (ValueError, OSError) as error:
        raise dg.Failure(
            description=f"Partition {day} not written: cannot use the data directory ({error}) -> check ORDERS_DATA_DIR",
            allow_retries=False,
        ) from None
    return root


def _chosen_api(day: date, mws: MwsResource, sp_api: SpApiResource) -> MwsResource | SpApiResource:
    """The resource $ORDERS_SOURCE names, read in this run's process (`mws` when unset)."""
    chosen = (dg.EnvVar(SOURCE_ENV).get_value() or "mws").strip().lower()
    if chosen not in ("mws", "sp-api"):
        raise dg.Failure(
            description=f"Partition {day} not written: {SOURCE_ENV}={chosen!r} -> set it to mws (default) or sp-api",
            allow_retries=False,
        )
    return sp_api if chosen == "sp-api" else mws


def _failure(day: date, error: MwsError | SpApiError) -> dg.Failure:
    """A run failure carrying one readable line; only transient API trouble is worth a step retry."""
    transient = (MwsServerError, MwsThrottledError, MwsConnectionError, SpApiServerError, SpApiThrottledError,
                 SpApiConnectionError)
    return dg.Failure(
        description=f"Partition {day} not written (earlier partitions untouched): {error}",
        allow_retries=isinstance(error, transient),
    )


def _summary(report: DayReport) -> str:
    state = "complete" if report.complete else "PARTIAL (re-run later to complete)"
    orders, items = report.orders, report.order_items
    return (
        f"{report.day}: fetched {orders.fetched:,} order versions and {items.fetched:,} items in {report.seconds:,.1f} s "
        f"({orders.new:,} and {items.new:,} new); {_merge_outcome(report, orders)}: the day holds {orders.total:,} order "
        f"versions and {items.total:,} items; window {report.window_start:%Y-%m-%dT%H:%M}Z..{report.covered_until}; "
        f"{state}; {report.quarantined_values} quarantined values, {orders.duplicates_dropped} repeated versions dropped"
    )


def _merge_outcome(report: DayReport, counts: MergeCounts) -> str:
    """How the fetch went into the partition: replaced on request, merged, or left alone because nothing changed."""
    if report.replaced:
        return "replaced (run config replace=true)"
    if not counts.changed:
        return "unchanged (no new or changed version; file left as it was)"
    return f"merged ({counts.carried_over:,} versions kept from earlier runs)"


def _write_manifests(root: Path, report: DayReport, api: ApiSource, run_id: str) -> None:
    """A JSON sidecar per written partition, so `orders-pipeline status` can tell complete from partial without Dagster."""
    for table, counts in (("orders", report.orders), ("order_items", report.order_items)):
        write_manifest(
            partition_dir(root, table, report.day),
            {
                "table": table,
                "day": report.day.isoformat(),
                "rows": counts.total,
                "fetched": counts.fetched,
                "new_versions": counts.new,
                "carried_over_versions": counts.carried_over,
                "merge": _merge_outcome(report, counts),
                "complete": report.complete,
                "covered_until": report.covered_until.isoformat() if report.covered_until else None,
                "quarantined_values": report.quarantined_values,
                "source": report.source,
                "method": report.method,
                "embedded_simulator": api.is_embedded_simulator,
                "dagster_run_id": run_id,
                "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )


def _metadata(root: Path, report: DayReport, api: ApiSource, table: str) -> dict:
    counts = report.orders if table == "orders" else report.order_items
    pages = report.order_pages if table == "orders" else report.item_pages
    return {
        "dagster/row_count": counts.total,
        "fetched": counts.fetched,
        "new_versions": counts.new,
        "carried_over_versions": counts.carried_over,
        "merge": _merge_outcome(report, counts),
        "pages": pages,
        "complete": report.complete,
        "window_start": report.window_start.isoformat(),
        "window_requested_end": report.window_requested_end.isoformat(),
        "covered_until": report.covered_until.isoformat() if report.covered_until else "nothing covered",
        "quarantined_values": report.quarantined_values,
        "duplicate_versions_dropped": counts.duplicates_dropped,
        "seconds": report.seconds,
        "source": report.source,
        "method": report.method,
        "endpoint": api.endpoint,
        "embedded_simulator": api.is_embedded_simulator,
        **{f"api_{name}": value for name, value in report.api.items()},
        "path": dg.MetadataValue.path(str(partition_dir(root, table, report.day))),
    }


def _check_results(root: Path, report: DayReport) -> Iterator[dg.AssetCheckResult]:
    """Checks read back the published files and compare them with what the API returned, so they test what readers see."""
    orders = pq.read_table(partition_dir(root, "orders", report.day), columns=[*ORDER_VERSION_KEY, "is_quarantined"])
    items = pq.read_table(partition_dir(root, "order_items", report.day), columns=list(ITEM_VERSION_KEY))
    quarantined_rows = pc.sum(orders.column("is_quarantined")).as_py() or 0
    yield dg.AssetCheckResult(
        check_name="no_quarantined_values",
        asset_key=ORDERS,
        passed=report.quarantined_values == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantined_values": report.quarantined_values, "orders_with_quarantined_values": quarantined_rows},
    )
    yield _unique_check("each_order_version_once", ORDERS, orders.select(list(ORDER_VERSION_KEY)))
    yield _unique_check("each_item_version_once", ORDER_ITEMS, items)
    missing = report.orders.fetched_keys_missing_from(orders.select(list(ORDER_VERSION_KEY)))
    yield dg.AssetCheckResult(
        check_name="holds_every_order_version_fetched",
        asset_key=ORDERS,
        passed=missing == 0 and orders.num_rows == report.orders.total,
        metadata={"fetched_versions_missing": missing, "rows": orders.num_rows, "expected_rows": report.orders.total},
    )
    item_orders = _null_safe(items.select(["amazon_order_id", "order_last_update_date"]))
    order_versions = _null_safe(orders.select(list(ORDER_VERSION_KEY)).rename_columns(item_orders.column_names))
    orphans = item_orders.join(order_versions, item_orders.column_names, join_type="left anti")
    yield dg.AssetCheckResult(
        check_name="items_have_their_order_version",
        asset_key=ORDER_ITEMS,
        passed=orphans.num_rows == 0,
        metadata={"orphan_item_rows": orphans.num_rows},
    )


def _unique_check(name: str, asset: dg.AssetKey, keys) -> dg.AssetCheckResult:
    """Passes when no key repeats in the published file (null matches null, as one version's key)."""
    distinct = keys.group_by(keys.column_names).aggregate([]).num_rows
    return dg.AssetCheckResult(
        check_name=name, asset_key=asset, passed=distinct == keys.num_rows,
        metadata={"rows": keys.num_rows, "distinct": distinct, "repeated": keys.num_rows - distinct},
    )


def _null_safe(keys: pa.Table) -> pa.Table:
    """The version column as integers with null as a sentinel, so a quarantined (null) version joins its own rows."""
    version = keys.column(keys.column_names[-1]).cast(pa.int64())
    return keys.set_column(keys.num_columns - 1, keys.column_names[-1], pc.fill_null(version, -(2**63)))
