"""The raw assets' checks: they read back the published partitions and compare them with what the API returned."""

from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orders_pipeline.sources.ingest import DayReport
from orders_pipeline.sources.raw_schema import ITEM_VERSION_KEY, ORDER_VERSION_KEY
from orders_pipeline.storage.layout import partition_dir

ORDERS = dg.AssetKey("orders")
ORDER_ITEMS = dg.AssetKey("order_items")

RAW_CHECKS = [
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


def check_results(root: Path, reports: Sequence[DayReport], account: str | None = None) -> Iterator[dg.AssetCheckResult]:
    """One result per check for the run (of `account`'s folders, when given): passed when every day passed; counts
    summed, failing days named."""
    per_day = [list(_day_checks(root, report, account)) for report in reports]
    for results in zip(*per_day):
        if len(results) == 1:
            yield results[0]
            continue
        metadata: dict[str, object] = {}
        for result in results:
            for name, value in result.metadata.items():
                metadata[name] = metadata.get(name, 0) + value.value
        failing = [str(report.day) for report, result in zip(reports, results) if not result.passed]
        yield dg.AssetCheckResult(
            check_name=results[0].check_name, asset_key=results[0].asset_key, passed=not failing,
            severity=results[0].severity, metadata={**metadata, "days": len(results), "failing_days": ", ".join(failing)},
        )


def _day_checks(root: Path, report: DayReport, account: str | None) -> Iterator[dg.AssetCheckResult]:
    """Checks read back the published files and compare them with what the API returned, so they test what readers see."""
    orders = pq.read_table(partition_dir(root, "orders", report.day, account), columns=[*ORDER_VERSION_KEY, "is_quarantined"])
    items = pq.read_table(partition_dir(root, "order_items", report.day, account), columns=list(ITEM_VERSION_KEY))
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
