"""What the stuck_orders and sku_trend_anomalies marts flag, keyed so that only new flags are reported (no Dagster here).

Every flag belongs to one seller account (the marts' `account` column, 'default' without accounts): its key, its
row and its line name it, since two accounts may flag the same order id or SKU."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

STUCK_ORDERS = "stuck_orders"
TREND_ANOMALIES = "sku_trend_anomalies"
MARTS = (STUCK_ORDERS, TREND_ANOMALIES)

STUCK_COLUMNS = ["account", "amazon_order_id", "order_status", "status_since", "hours_in_status", "reason", "sales_channel", "units_unshipped"]
ANOMALY_COLUMNS = ["account", "seller_sku", "day", "direction", "units_ordered", "trailing_mean", "score"]
PREVIEW_ROWS = 20
ANOMALY_HORIZON_DAYS = 7


def alert_key(mart: str, row: dict) -> str:
    """The identity of a flag: `account/order id` for a stuck order, `account/SKU@day` for a trend anomaly (an
    account name never holds a `/`)."""
    if mart == STUCK_ORDERS:
        return f"{row['account']}/{row['amazon_order_id']}"
    return f"{row['account']}/{row['seller_sku']}@{row['day']}"


def flagged_rows(mart: str, path: Path | str) -> dict[str, dict]:
    """Every row the mart flags now, by key; an absent file flags nothing."""
    path = Path(path)
    if not path.exists():
        return {}
    columns = STUCK_COLUMNS if mart == STUCK_ORDERS else ANOMALY_COLUMNS
    rows = pq.read_table(path, columns=columns).to_pylist()
    return {alert_key(mart, row): {name: _plain(value) for name, value in row.items()} for row in rows}


def alertable(mart: str, keys: Iterable[str]) -> set[str]:
    """The flags still news: every stuck order; trend anomalies on the ANOMALY_HORIZON_DAYS days up to the newest one
    of their account."""
    keys = set(keys)
    if mart == STUCK_ORDERS or not keys:
        return keys
    days = {key: (key.split("/", 1)[0], date.fromisoformat(key.rsplit("@", 1)[1])) for key in keys}
    newest: dict[str, date] = {}
    for account, day in days.values():
        newest[account] = max(day, newest.get(account, day))
    horizon = timedelta(days=ANOMALY_HORIZON_DAYS - 1)
    return {key for key, (account, day) in days.items() if day >= newest[account] - horizon}


@dataclass(frozen=True)
class AlertBatch:
    """New stuck orders and new SKU trend anomalies, as plain JSON-ready rows."""

    stuck_orders: list[dict]
    trend_anomalies: list[dict]

    def __bool__(self) -> bool:
        return bool(self.stuck_orders or self.trend_anomalies)

    def summary(self) -> str:
        """One line for logs, naming the accounts flagged."""
        accounts = sorted({row["account"] for row in (*self.stuck_orders, *self.trend_anomalies)})
        where = f" (account{'s' if len(accounts) > 1 else ''} {', '.join(accounts)})" if accounts else ""
        return f"{len(self.stuck_orders)} new stuck orders, {len(self.trend_anomalies)} new SKU trend anomalies{where}"

    def payload(self) -> dict:
        """The webhook body."""
        return {
            "source": "orders_pipeline",
            "summary": self.summary(),
            "new_stuck_orders": self.stuck_orders,
            "new_sku_trend_anomalies": self.trend_anomalies,
        }

    def lines(self) -> list[str]:
        """One human line per alert, for logs."""
        return [
            *(f"stuck: account {r['account']}: {r['amazon_order_id']} {r['order_status']} for {r['hours_in_status']:.0f} h ({r['reason']})" for r in self.stuck_orders),
            *(f"trend: account {r['account']}: {r['seller_sku']} {r['direction']} on {r['day']}: {r['units_ordered']} units vs {r['trailing_mean']:.1f}/day" for r in self.trend_anomalies),
        ]

    def markdown(self) -> str:
        """Two tables (first rows of each) for the UI."""
        return "\n\n".join(
            [
                f"**New stuck orders: {len(self.stuck_orders)}**\n\n" + _table(self.stuck_orders, STUCK_COLUMNS),
                f"**New SKU trend anomalies: {len(self.trend_anomalies)}**\n\n" + _table(self.trend_anomalies, ANOMALY_COLUMNS),
            ]
        )


def new_alerts(paths: dict[str, Path], keys: dict[str, list[str]]) -> AlertBatch:
    """The rows behind `keys` (chosen by the sensor), read from the marts now; keys no longer flagged are dropped."""
    rows = {mart: flagged_rows(mart, paths[mart]) for mart in MARTS}
    picked = {mart: [rows[mart][key] for key in keys.get(mart, []) if key in rows[mart]] for mart in MARTS}
    return AlertBatch(picked[STUCK_ORDERS], picked[TREND_ANOMALIES])


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "_none_"
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "\n".join("| " + " | ".join(_cell(row[name]) for name in columns) + " |" for row in rows[:PREVIEW_ROWS])
    more = f"\n\n… and {len(rows) - PREVIEW_ROWS} more" if len(rows) > PREVIEW_ROWS else ""
    return header + body + more


def _cell(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value).replace("|", "/")


def _plain(value: object) -> object:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
