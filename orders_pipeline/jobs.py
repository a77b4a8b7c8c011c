"""Jobs the schedule and the CLI launch."""

from __future__ import annotations

import dagster as dg

from orders_pipeline.assets.raw import ORDER_ITEMS, ORDERS

ingest_job = dg.define_asset_job(
    "mws_ingest",
    selection=dg.AssetSelection.assets(ORDERS, ORDER_ITEMS),
    description="Fetch one UTC day of order changes and their items from MWS.",
)
