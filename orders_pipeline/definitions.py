"""The one Dagster code location of orders_pipeline."""

import dagster as dg

from orders_pipeline.assets.raw import mws_orders
from orders_pipeline.jobs import ingest_job
from orders_pipeline.resources import mws_resource_from_environment
from orders_pipeline.schedules import daily_ingest_schedule

defs = dg.Definitions(
    assets=[mws_orders],
    jobs=[ingest_job],
    schedules=[daily_ingest_schedule],
    resources={"mws": mws_resource_from_environment()},
)
