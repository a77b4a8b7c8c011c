"""The `mart_alerts` asset: delivers the new stuck orders and SKU trend anomalies the sensor found (logs, metadata, webhook)."""

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from orders_pipeline.defs.object_store import readable_marts
from orders_pipeline.insights.alerts import STUCK_ORDERS, TREND_ANOMALIES, new_alerts
from orders_pipeline.insights.webhook import WEBHOOK_URL_ENV, post_json

ALERTS_GROUP = "alerts"
MART_ALERTS = dg.AssetKey("mart_alerts")


class AlertsConfig(dg.Config):
    """What to report, as chosen by `mart_alerts_sensor`; files are the marts' own `path` metadata."""

    stuck_orders_path: str = Field(description="stuck_orders.parquet to read the rows from")
    trend_anomalies_path: str = Field(description="sku_trend_anomalies.parquet to read the rows from")
    new_stuck_order_ids: list[str] = Field(default_factory=list)
    new_trend_anomaly_keys: list[str] = Field(default_factory=list, description="SKU@YYYY-MM-DD")


@dg.asset(
    key=MART_ALERTS,
    deps=[dg.AssetKey(STUCK_ORDERS), dg.AssetKey(TREND_ANOMALIES)],
    group_name=ALERTS_GROUP,
    kinds={"python"},
    description=f"New stuck orders and SKU trend anomalies, launched by mart_alerts_sensor; POSTed to ${WEBHOOK_URL_ENV} when set, or the run fails.",
)
def mart_alerts(context: dg.AssetExecutionContext, config: AlertsConfig) -> dg.MaterializeResult:
    """Read the new flags from the marts, log them, deliver them, and keep them in the materialization's metadata."""
    recorded = readable_marts({STUCK_ORDERS: config.stuck_orders_path, TREND_ANOMALIES: config.trend_anomalies_path})
    paths = {mart: Path(path) for mart, path in recorded.items()}
    batch = new_alerts(paths, {STUCK_ORDERS: config.new_stuck_order_ids, TREND_ANOMALIES: config.new_trend_anomaly_keys})
    announce = context.log.warning if batch else context.log.info
    announce(batch.summary())
    for line in batch.lines():
        context.log.warning(line)
    webhook = _deliver(batch.payload()) if batch else "nothing to post"
    context.log.info(f"webhook: {webhook}")
    return dg.MaterializeResult(
        metadata={
            "new_stuck_orders": len(batch.stuck_orders),
            "new_trend_anomalies": len(batch.trend_anomalies),
            "alerts": dg.MetadataValue.md(batch.markdown()),
            "webhook": webhook,
        }
    )


def _deliver(payload: dict) -> str:
    """Post to the webhook if one is configured; one that cannot take the alerts fails the run, so the sensor sends them again."""
    url = os.environ.get(WEBHOOK_URL_ENV)
    if not url:
        return f"not configured (set {WEBHOOK_URL_ENV} to post alerts)"
    delivery = post_json(url, payload)
    if not delivery.delivered:
        raise dg.Failure(
            description=f"alerts {delivery.describe()}; mart_alerts_sensor sends them again in a new run (fix the receiver or {WEBHOOK_URL_ENV})",
            metadata={"webhook": delivery.describe()},
        )
    return delivery.describe()
