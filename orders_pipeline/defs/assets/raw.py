"""The raw daily-partitioned assets `orders` and `order_items`, fetched together from MWS or SP-API ($ORDERS_SOURCE) and
merged into each day's partitions."""

from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
from pydantic import Field

from orders_pipeline.defs.assets.raw_checks import ORDER_ITEMS, ORDERS, RAW_CHECKS, check_results
from orders_pipeline.sources.ingest import DayReport, ingest_days
from orders_pipeline.sources.mws.errors import MwsConnectionError, MwsError, MwsServerError, MwsThrottledError
from orders_pipeline.defs.object_store import checked_out_days
from orders_pipeline.defs.partitions import daily_partitions
from orders_pipeline.defs.resources import SOURCE_ENV, SOURCES, ApiSource, MwsResource, chosen_source
from orders_pipeline.defs.sp_api_resource import SpApiResource
from orders_pipeline.sources.sp_api.errors import SpApiConnectionError, SpApiError, SpApiServerError, SpApiThrottledError
from orders_pipeline.storage.layout import data_dir, partition_dir, write_manifest
from orders_pipeline.storage.object_store import RAW_TABLES
from orders_pipeline.storage.partitions import MergeCounts, UnreadablePartitionError
from orders_pipeline.storage.source_marker import MixedSourceError

MWS_POOL = "mws_api"  # one seller's API budget, whichever API ($ORDERS_SOURCE) spends it
RAW_GROUP = "mws_raw"


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
            description="Every version of every order observed (MWS ListOrders, SP-API searchOrders or an orders "
            "report), one UTC day of its last update per partition; a re-run merges, so versions seen before are kept.",
            group_name=RAW_GROUP,
            kinds={"python", "parquet"},
            metadata={"path": "$ORDERS_DATA_DIR/orders/dt=YYYY-MM-DD/part-0.parquet"},
        ),
        dg.AssetSpec(
            ORDER_ITEMS,
            description="The items of each order version in `orders` (ListOrderItems, or the order's own), same partitions.",
            group_name=RAW_GROUP,
            kinds={"python", "parquet"},
            metadata={"path": "$ORDERS_DATA_DIR/order_items/dt=YYYY-MM-DD/part-0.parquet"},
        ),
    ],
    check_specs=RAW_CHECKS,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # a range is one run: a Reports backfill on SP-API, one window on MWS
    pool=MWS_POOL,
    retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
def mws_orders(
    context: dg.AssetExecutionContext, config: IngestConfig, mws: MwsResource, sp_api: SpApiResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Fetch the days' changed orders and their items from the chosen API and merge them into each day's partitions."""
    days = [date.fromisoformat(key) for key in context.partition_keys]
    root = _usable_data_dir(days[0])
    chosen = _chosen_api(days[0], mws, sp_api)
    folders = [partition_dir(root, table, day) for day in days for table in RAW_TABLES]
    with checked_out_days(_span(days), folders) as publish:  # s3://: the days pulled first, pushed by publish()
        try:
            with chosen.open_source(writing_into=root, bulk=len(days) > 1) as (source, api):
                announce = context.log.warning if api.is_embedded_simulator else context.log.info
                announce(api.describe())
                reports = ingest_days(source, days, root, replace=config.replace, progress=context.log.info)
        except (MwsError, SpApiError) as error:
            raise _failure(_span(days), error) from None
        except (UnreadablePartitionError, MixedSourceError) as error:
            raise dg.Failure(description=f"Partition {_span(days)} not written: {error}", allow_retries=False) from None
        for report in reports:
            _write_manifests(root, report, api, context.run.run_id)
            context.log.info(_summary(report))
        publish()
    yield dg.MaterializeResult(asset_key=ORDERS, metadata=_metadata(root, reports, api, "orders"))
    yield dg.MaterializeResult(asset_key=ORDER_ITEMS, metadata=_metadata(root, reports, api, "order_items"))
    yield from check_results(root, reports)


def _span(days: list[date]) -> str:
    """A day, or a range of days, as the failure names it."""
    return str(days[0]) if len(days) == 1 else f"{days[0]}...{days[-1]}"


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
    chosen = chosen_source()
    if chosen not in SOURCES:
        raise dg.Failure(
            description=f"Partition {day} not written: {SOURCE_ENV}={chosen!r} -> set it to mws (default) or sp-api",
            allow_retries=False,
        )
    return sp_api if chosen == "sp-api" else mws


def _failure(day: str, error: MwsError | SpApiError) -> dg.Failure:
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
    if not counts.existed:
        return "written (a new partition)"
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


def _metadata(root: Path, reports: list[DayReport], api: ApiSource, table: str) -> dict:
    """One day's figures, or a range's summed (its days' manifests keep each day's own)."""
    first, last = reports[0], reports[-1]
    counts = [report.orders if table == "orders" else report.order_items for report in reports]
    merged = _merge_outcome(first, counts[0]) if len(reports) == 1 else (
        f"{len(reports)} days: {sum(c.changed for c in counts)} written, {sum(not c.changed for c in counts)} unchanged"
    )
    return {
        "dagster/row_count": sum(c.total for c in counts),
        "days": len(reports),
        "fetched": sum(c.fetched for c in counts),
        "new_versions": sum(c.new for c in counts),
        "carried_over_versions": sum(c.carried_over for c in counts),
        "merge": merged,
        "pages": first.order_pages if table == "orders" else first.item_pages,
        "complete": all(report.complete for report in reports),
        "window_start": first.window_start.isoformat(),
        "window_requested_end": last.window_requested_end.isoformat(),
        "covered_until": first.covered_until.isoformat() if first.covered_until else "nothing covered",
        "quarantined_values": first.quarantined_values,
        "duplicate_versions_dropped": sum(c.duplicates_dropped for c in counts),
        "seconds": first.seconds,
        "source": first.source,
        "method": first.method,
        "endpoint": api.endpoint,
        "embedded_simulator": api.is_embedded_simulator,
        **{f"api_{name}": value for name, value in first.api.items()},
        "path": dg.MetadataValue.path(str(partition_dir(root, table, first.day) if len(reports) == 1 else root / table)),
    }
