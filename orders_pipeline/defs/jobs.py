"""Jobs the schedule and the CLI launch."""

from __future__ import annotations

import dagster as dg

from orders_pipeline.defs.assets.alerts import MART_ALERTS
from orders_pipeline.defs.assets.raw import ORDER_ITEMS, ORDERS

ingest_job = dg.define_asset_job(
    "mws_ingest",
    selection=dg.AssetSelection.assets(ORDERS, ORDER_ITEMS),
    description="Fetch one UTC day of order changes and their items from MWS.",
)

alerts_job = dg.define_asset_job(
    "mart_alerts_job",
    selection=dg.AssetSelection.assets(MART_ALERTS),
    description="Report new stuck orders and SKU trend anomalies (launched by mart_alerts_sensor).",
)

analytics_job = dg.define_asset_job(
    "refresh_analytics",
    selection=dg.AssetSelection.groups("analytics"),
    description="Rebuild every SQL model, the warehouse and the charts from the partitions that have landed.",
)
