"""The raw daily-partitioned assets `orders` and `order_items`, fetched together from MWS."""

from collections.abc import Iterator
from datetime import date, datetime, timezone

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orders_pipeline.ingest import DayReport, ingest_day
from orders_pipeline.mws.errors import MwsConnectionError, MwsError, MwsServerError, MwsThrottledError
from orders_pipeline.partitions import daily_partitions
from orders_pipeline.resources import ApiSource, MwsResource
from orders_pipeline.storage import data_dir, partition_dir, write_manifest

MWS_POOL = "mws_api"
RAW_GROUP = "mws_raw"

ORDERS = dg.AssetKey("orders")
ORDER_ITEMS = dg.AssetKey("order_items")

_raw_checks = [
    dg.AssetCheckSpec("no_quarantined_values", asset=ORDERS, description="Every value decoded; messy ones are kept as null and flagged."),
    dg.AssetCheckSpec("unique_order_ids", asset=ORDERS, description="Each order appears once per partition."),
    dg.AssetCheckSpec("items_have_orders", asset=ORDER_ITEMS, description="Every item's order is in the same partition."),
    dg.AssetCheckSpec("unique_order_item_ids", asset=ORDER_ITEMS, description="Each item appears once per partition."),
]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ORDERS,
            description="Every version of every order seen on MWS ListOrders, one UTC day of LastUpdateDate per partition.",
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
def mws_orders(context: dg.AssetExecutionContext, mws: MwsResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Fetch the day's changed orders and their items from MWS and replace the day's partitions."""
    day = date.fromisoformat(context.partition_key)
    try:
        root = data_dir()
        with mws.open_client(writing_into=root) as (client, source):
            announce = context.log.warning if source.is_embedded_simulator else context.log.info
            announce(source.describe())
            report = ingest_day(client, day, root, progress=context.log.info)
    except MwsError as error:
        raise _failure(day, error) from None
    except (ValueError, OSError) as error:
        raise dg.Failure(
            description=f"Partition {day} not written: cannot use the data directory ({error}) -> check ORDERS_DATA_DIR",
            allow_retries=False,
        ) from None
    _write_manifests(report, source, context.run.run_id)
    context.log.info(_summary(report))
    yield dg.MaterializeResult(asset_key=ORDERS, metadata=_metadata(report, source, "orders"))
    yield dg.MaterializeResult(asset_key=ORDER_ITEMS, metadata=_metadata(report, source, "order_items"))
    yield from _check_results(day, report)


def _failure(day: date, error: MwsError) -> dg.Failure:
    """A run failure carrying one readable line; only transient API trouble is worth a step retry."""
    return dg.Failure(
        description=f"Partition {day} not written (earlier partitions untouched): {error}",
        allow_retries=isinstance(error, (MwsServerError, MwsThrottledError, MwsConnectionError)),
    )


def _summary(report: DayReport) -> str:
    state = "complete" if report.complete else "PARTIAL (re-run later to complete)"
    return (
        f"{report.day}: wrote {report.orders:,} orders and {report.order_items:,} items "
        f"in {report.seconds:,.1f} s; window {report.window_start:%Y-%m-%dT%H:%M}Z..{report.covered_until}; {state}; "
        f"{report.quarantined_values} quarantined values, {report.duplicate_orders_dropped} duplicate versions dropped"
    )


def _write_manifests(report: DayReport, source: ApiSource, run_id: str) -> None:
    """A JSON sidecar per written partition, so `orders-pipeline status` can tell complete from partial without Dagster."""
    for table, rows in (("orders", report.orders), ("order_items", report.order_items)):
        write_manifest(
            partition_dir(data_dir(), table, report.day),
            {
                "table": table,
                "day": report.day.isoformat(),
                "rows": rows,
                "complete": report.complete,
                "covered_until": report.covered_until.isoformat() if report.covered_until else None,
                "quarantined_values": report.quarantined_values,
                "embedded_simulator": source.is_embedded_simulator,
                "dagster_run_id": run_id,
                "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )


def _metadata(report: DayReport, source: ApiSource, table: str) -> dict:
    rows = report.orders if table == "orders" else report.order_items
    pages = report.order_pages if table == "orders" else report.item_pages
    return {
        "dagster/row_count": rows,
        "pages": pages,
        "complete": report.complete,
        "window_start": report.window_start.isoformat(),
        "window_requested_end": report.window_requested_end.isoformat(),
        "covered_until": report.covered_until.isoformat() if report.covered_until else "nothing covered",
        "quarantined_values": report.quarantined_values,
        "duplicate_versions_dropped": report.duplicate_orders_dropped,
        "seconds": report.seconds,
        "source": source.endpoint,
        "embedded_simulator": source.is_embedded_simulator,
        **{f"api_{name}": value for name, value in report.api.items()},
        "path": dg.MetadataValue.path(str(partition_dir(data_dir(), table, report.day))),
    }


def _check_results(day: date, report: DayReport) -> Iterator[dg.AssetCheckResult]:
    """Checks read back the committed files, so they test what readers will see."""
    root = data_dir()
    orders = pq.read_table(partition_dir(root, "orders", day), columns=["amazon_order_id", "is_quarantined"])
    items = pq.read_table(partition_dir(root, "order_items", day), columns=["amazon_order_id", "order_item_id"])
    quarantined_rows = pc.sum(orders.column("is_quarantined")).as_py() or 0
    yield dg.AssetCheckResult(
        check_name="no_quarantined_values",
        asset_key=ORDERS,
        passed=report.quarantined_values == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantined_values": report.quarantined_values, "orders_with_quarantined_values": quarantined_rows},
    )
    order_ids = orders.column("amazon_order_id")
    yield dg.AssetCheckResult(
        check_name="unique_order_ids",
        asset_key=ORDERS,
        passed=len(pc.unique(order_ids)) == len(order_ids),
        metadata={"rows": len(order_ids), "distinct": len(pc.unique(order_ids))},
    )
    orphans = pc.sum(pc.invert(pc.is_in(items.column("amazon_order_id"), value_set=pc.unique(order_ids)))).as_py() or 0
    yield dg.AssetCheckResult(
        check_name="items_have_orders", asset_key=ORDER_ITEMS, passed=orphans == 0, metadata={"orphan_items": orphans}
    )
    item_keys = pc.binary_join_element_wise(items.column("amazon_order_id"), items.column("order_item_id"), "/")
    yield dg.AssetCheckResult(
        check_name="unique_order_item_ids",
        asset_key=ORDER_ITEMS,
        passed=len(pc.unique(item_keys)) == len(item_keys),
        metadata={"rows": len(item_keys), "distinct": len(pc.unique(item_keys))},
    )
