"""Sensors: alert on new flags after the marts refresh, and keep the charts fresh."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import dagster as dg

from orders_pipeline.alerts import MARTS, STUCK_ORDERS, TREND_ANOMALIES, flagged_rows
from orders_pipeline.assets.alerts import MART_ALERTS, AlertsConfig
from orders_pipeline.assets.reports import SALES_CHARTS
from orders_pipeline.jobs import alerts_job


@dataclass
class AlertCursor:
    """The last mart materialization seen per mart, and the keys flagged (and so already reported) at that point."""

    seen: dict[str, int] = field(default_factory=dict)
    reported: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> AlertCursor:
        """The cursor from its stored text (empty when the sensor has never run)."""
        return cls(**json.loads(text)) if text else cls()

    def dump(self) -> str:
        """The cursor as the text the sensor stores."""
        return json.dumps(asdict(self), sort_keys=True)


@dg.sensor(
    job=alerts_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After stuck_orders / sku_trend_anomalies refresh, launch mart_alerts with what they newly flag.",
)
def mart_alerts_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Compare what the marts flag now with what was flagged at the last refresh; report only the difference."""
    cursor = AlertCursor.parse(context.cursor)
    latest = {mart: _latest_materialization(context.instance, mart) for mart in MARTS}
    if any(record is None for record in latest.values()):
        return dg.SkipReason("waiting for stuck_orders and sku_trend_anomalies to be materialized")
    if all(latest[mart].storage_id <= cursor.seen.get(mart, 0) for mart in MARTS):
        return dg.SkipReason("no mart refresh since the last evaluation")
    paths = {mart: _path_of(latest[mart]) for mart in MARTS}
    flagged = {mart: sorted(flagged_rows(mart, paths[mart])) for mart in MARTS}
    new = {mart: sorted(set(flagged[mart]) - set(cursor.reported.get(mart, []))) for mart in MARTS}
    next_cursor = AlertCursor({mart: latest[mart].storage_id for mart in MARTS}, flagged).dump()
    if not any(new.values()):
        return dg.SensorResult(skip_reason="marts refreshed: nothing newly flagged", cursor=next_cursor)
    context.log.info(f"{len(new[STUCK_ORDERS])} new stuck orders, {len(new[TREND_ANOMALIES])} new SKU trend anomalies")
    config = AlertsConfig(
        stuck_orders_path=paths[STUCK_ORDERS],
        trend_anomalies_path=paths[TREND_ANOMALIES],
        new_stuck_order_ids=new[STUCK_ORDERS],
        new_trend_anomaly_keys=new[TREND_ANOMALIES],
    )
    run_key = "alerts-" + "-".join(str(latest[mart].storage_id) for mart in MARTS)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key, run_config=dg.RunConfig(ops={MART_ALERTS.path[-1]: config}))],
        cursor=next_cursor,
    )


def _latest_materialization(instance: dg.DagsterInstance, mart: str) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(dg.AssetKey(mart), limit=1).records
    return records[0] if records else None


def _path_of(record: dg.EventLogRecord) -> str:
    return str(record.asset_materialization.metadata["path"].value)


reports_automation = dg.AutomationConditionSensorDefinition(
    "reports_automation",
    target=dg.AssetSelection.assets(SALES_CHARTS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Redraw the charts when the marts they read refresh.",
)
