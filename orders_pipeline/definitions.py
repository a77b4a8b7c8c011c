"""The one Dagster code location of orders_pipeline."""

import dagster as dg

from orders_pipeline.defs.assets.alerts import mart_alerts
from orders_pipeline.defs.assets.analytics import analytics_assets, analytics_sensors
from orders_pipeline.defs.assets.raw import mws_orders
from orders_pipeline.defs.assets.reports import sales_charts
from orders_pipeline.defs.jobs import alerts_job, analytics_job, ingest_job
from orders_pipeline.defs.resources import MwsResource
from orders_pipeline.defs.sp_api_resource import SpApiResource
from orders_pipeline.defs.schedules import daily_ingest_schedule
from orders_pipeline.defs.sensors import mart_alerts_sensor, reports_automation

defs = dg.Definitions(
    assets=[mws_orders, *analytics_assets, sales_charts, mart_alerts],
    jobs=[ingest_job, analytics_job, alerts_job],
    schedules=[daily_ingest_schedule],
    sensors=[*analytics_sensors, reports_automation, mart_alerts_sensor],
    resources={"mws": MwsResource(), "sp_api": SpApiResource()},  # every setting read from the environment by the run itself
)
