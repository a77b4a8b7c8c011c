"""Sensors: deliver new flags after the marts refresh (at least once), and keep the charts fresh."""

from __future__ import annotations

import dagster as dg

from orders_pipeline.defs.alert_cursor import AlertCursor
from orders_pipeline.insights.alerts import MARTS, STUCK_ORDERS, TREND_ANOMALIES, alertable, flagged_rows
from orders_pipeline.defs.assets.alerts import MART_ALERTS, AlertsConfig
from orders_pipeline.defs.assets.reports import SALES_CHARTS
from orders_pipeline.defs.jobs import alerts_job
from orders_pipeline.defs.object_store import readable_marts

ALERT_BATCH_TAG = "orders_pipeline/alert_batch"


@dg.sensor(
    job=alerts_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After stuck_orders / sku_trend_anomalies refresh, launch mart_alerts with what they flag and was not delivered yet.",
)
def mart_alerts_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Settle the batch in flight, then request a run for the flags not delivered yet (again, after a failed run)."""
    cursor = AlertCursor.parse(context.cursor)
    if cursor.run_key:
        run = _run_of_batch(context.instance, cursor.run_key)
        if run is not None and not run.is_finished:
            return dg.SkipReason(f"waiting for run {run.run_id} to deliver alerts batch {cursor.run_key}")
        cursor = cursor.settled(delivered=run is not None and run.is_success)
    latest = {mart: _latest_materialization(context.instance, mart) for mart in MARTS}
    if any(record is None for record in latest.values()):
        return _skip("waiting for stuck_orders and sku_trend_anomalies to be materialized", cursor)
    seen = {mart: latest[mart].storage_id for mart in MARTS}
    if not cursor.failures and all(seen[mart] <= cursor.seen.get(mart, 0) for mart in MARTS):
        return _skip("no mart refresh since the last evaluation", cursor)
    paths = readable_marts({mart: _path_of(latest[mart]) for mart in MARTS})
    flagged = {mart: alertable(mart, flagged_rows(mart, paths[mart])) for mart in MARTS}
    cursor = cursor.evaluated(seen, flagged)
    new = cursor.undelivered(flagged)
    if not any(new.values()):
        return _skip("marts refreshed: nothing newly flagged", cursor.idle())
    retry = f" (retry {cursor.failures} after a failed delivery)" if cursor.failures else ""
    context.log.info(f"{len(new[STUCK_ORDERS])} new stuck orders, {len(new[TREND_ANOMALIES])} new SKU trend anomalies{retry}")
    run_key = cursor.next_run_key(seen)
    return dg.SensorResult(run_requests=[_alerts_run(run_key, paths, new)], cursor=cursor.requested(run_key, new).dump())


def _skip(reason: str, cursor: AlertCursor) -> dg.SensorResult:
    return dg.SensorResult(skip_reason=reason, cursor=cursor.dump())


def _alerts_run(run_key: str, paths: dict[str, str], new: dict[str, list[str]]) -> dg.RunRequest:
    """A mart_alerts run for the batch `new`, tagged so that the sensor can find it again."""
    config = AlertsConfig(
        stuck_orders_path=paths[STUCK_ORDERS],
        trend_anomalies_path=paths[TREND_ANOMALIES],
        new_stuck_order_ids=new[STUCK_ORDERS],
        new_trend_anomaly_keys=new[TREND_ANOMALIES],
    )
    return dg.RunRequest(run_key=run_key, run_config=dg.RunConfig(ops={MART_ALERTS.path[-1]: config}), tags={ALERT_BATCH_TAG: run_key})


def _run_of_batch(instance: dg.DagsterInstance, run_key: str) -> dg.DagsterRun | None:
    """The newest run tagged with the batch `run_key`; None if there is none (it was never launched, or deleted)."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={ALERT_BATCH_TAG: run_key}), limit=1)
    return runs[0] if runs else None


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
