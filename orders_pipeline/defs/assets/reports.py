"""The `sales_charts` asset: SVG charts of SKU trends and sales by channel, refreshed after the marts."""

import base64

import dagster as dg

from orders_pipeline.defs.assets.analytics import AUTOMATION, GROUP
from orders_pipeline.insights.reports import Report, write_reports
from orders_pipeline.defs.object_store import publish_files, pulled_store
from orders_pipeline.storage.layout import data_dir, marts_dir

SALES_CHARTS = dg.AssetKey("sales_charts")


@dg.asset(
    key=SALES_CHARTS,
    deps=[dg.AssetKey("sku_sales_trends"), dg.AssetKey("sales_by_channel")],
    group_name=GROUP,
    kinds={"svg"},
    description="Charts under $ORDERS_DATA_DIR/reports: top SKUs' units per day with 7/28-day averages, and units by channel.",
    automation_condition=AUTOMATION,
)
def sales_charts(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Draw both charts from the marts and show them, with the numbers behind them, in the asset's metadata."""
    store = pulled_store(context.log, [marts_dir(data_dir())])  # s3://: the marts as published
    sku_trends, by_channel = write_reports(data_dir())
    context.log.info(f"charts written: {sku_trends.path}, {by_channel.path}")
    publish_files(store, [sku_trends.path, by_channel.path], context.log)
    return dg.MaterializeResult(
        metadata={
            "sku_trends": dg.MetadataValue.md(_embedded(sku_trends)),
            "sales_by_channel": dg.MetadataValue.md(_embedded(by_channel)),
            "sku_trends_path": dg.MetadataValue.path(str(sku_trends.path)),
            "sales_by_channel_path": dg.MetadataValue.path(str(by_channel.path)),
        }
    )


def _embedded(report: Report) -> str:
    """The chart inlined as a data-URI image, followed by its numbers as a table."""
    data = base64.b64encode(report.svg.encode()).decode()
    return f"![{report.path.name}](data:image/svg+xml;base64,{data})\n\n{report.table_markdown}"
