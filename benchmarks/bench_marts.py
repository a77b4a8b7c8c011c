"""Time building every dbt_like_sql model with DuckDB against the same computations in pandas.

Generates a year of raw change-feed data (365 daily partitions, ~10 million item rows by default) with the
contract's Arrow schemas, then, in this one process:

1. builds all models from scratch with the real loader (`orders_pipeline.analytics.build.Build`: read the raw Parquet, keep
   the incremental models' tables in the state database, compute the marts and write each to Parquet), then the
   warehouse file;
2. refreshes them the way a daily run does: with the last day's partitions removed, then with them back (a new
   day landing), each an incremental update; and checks that the result equals the build from scratch;
3. computes the same models with pandas (read the same Parquet, compute, write Parquet);
4. cross-checks a few totals between the two and prints the times, the ratios and the peak RSS.

    python benchmarks/bench_marts.py                  # ~10M item rows into benchmarks/out/
    python benchmarks/bench_marts.py --rows 500000    # quick run
    python benchmarks/bench_marts.py --skip-pandas    # DuckDB only
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from orders_pipeline.analytics import incremental
from orders_pipeline.analytics.project import Project, load_project
from orders_pipeline.analytics.build import Build
from orders_pipeline.sources.raw_schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA
from orders_pipeline.analytics.warehouse import build_warehouse

DAY_S = 86_400
START = np.datetime64("2024-01-01T00:00:00", "s")
MARKETPLACES = np.array(["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"])
SALES_CHANNELS = np.array(["Amazon.com", "Amazon.ca"])
CURRENCIES = np.array(["USD", "CAD"])
MARKETPLACE_TIMEZONES = {"ATVPDKIKX0DER": "America/Los_Angeles", "A2EUQ1WTGCTBG2": "America/Los_Angeles"}
"""The time zones stg_orders gives the two generated marketplaces (Seller Central's days), for the pandas side."""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads: steadier than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------------------------- data


def _table(columns: dict[str, np.ndarray | pa.Array], schema: pa.Schema, n: int) -> pa.Table:
    arrays = []
    for f in schema:
        if f.name in columns:
            arrays.append(pa.array(columns[f.name], type=f.type) if not isinstance(columns[f.name], pa.Array)
                          else columns[f.name].cast(f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _money(cents: np.ndarray, valid: np.ndarray) -> pa.Array:
    """decimal(18,2) from integer cents, built from the unscaled 128-bit values (exact, vectorized)."""
    unscaled = np.zeros((len(cents), 2), dtype=np.int64)
    unscaled[:, 0] = cents  # little-endian low word; cents are positive, so the high word stays 0
    validity = pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [validity, pa.py_buffer(unscaled.tobytes())])


def _digits(values: np.ndarray, width: int) -> pa.Array:
    """Non-negative integers as zero-padded decimal strings of `width` characters (vectorized)."""
    return pc.utf8_lpad(pa.array(values, pa.int64()).cast(pa.string()), width=width, padding="0")


def _scatter(index: np.ndarray, modulus: int, seed: int) -> np.ndarray:
    """A bijection of 0..modulus-1 that looks random: distinct inputs give distinct outputs (so ids stay unique)."""
    multiplier = 6_364_136_223_846_793 % modulus | 1  # odd and not a multiple of 5: coprime with 10**k
    while multiplier % 5 == 0:
        multiplier += 2
    return ((index.astype(object) * multiplier + seed) % modulus).astype(np.int64)


def amazon_order_ids(n: int, seed: int) -> pa.Array:
    """Ids shaped like Amazon's: 3-7-7 digits (`123-1234567-1234567`, 19 characters), unique, random-looking."""
    body = _scatter(np.arange(n, dtype=np.int64), 10**14, seed)
    prefix = 100 + body % 900  # Amazon's first group is 1xx-9xx (marketplace-specific)
    return pc.binary_join_element_wise(
        _digits(prefix, 3), _digits(body // 10**7, 7), _digits(body % 10**7, 7), "-")


def generate(out: Path, item_rows: int, days: int = 365, n_skus: int = 2000, seed: int = 7) -> dict[str, int]:
    """Write `days` partitions of orders and order_items with about `item_rows` item rows; vectorized."""
    rng = np.random.default_rng(seed)
    n_orders = max(int(item_rows / 2.57), 10)  # ~1.7 versions (one per day) x 1.5 items per order
    end = START + np.timedelta64(days * DAY_S - 1, "s")

    # ----- orders
    purchase = START + rng.integers(0, days * DAY_S, n_orders).astype("timedelta64[s]")
    market = (rng.random(n_orders) < 0.2).astype(np.int8)  # 20 % Canada
    afn = rng.random(n_orders) < 0.6
    n_versions = rng.integers(1, 4, n_orders)
    n_items = rng.integers(1, 3, n_orders)
    final = np.full(n_orders, "Shipped", dtype=object)
    roll = rng.random(n_orders)
    final[roll < 0.03] = "Canceled"
    final[(roll >= 0.03) & (roll < 0.04)] = "Unshipped"
    final[(roll >= 0.04) & (roll < 0.045)] = "Pending"
    order_ids = amazon_order_ids(n_orders, seed)  # 19 characters, as the API sends them

    # ----- versions: v1 Pending, v2 Unshipped, v3 final (k versions keep the last k of that path)
    o = np.repeat(np.arange(n_orders), n_versions)
    v = np.arange(len(o)) - np.repeat(np.cumsum(n_versions) - n_versions, n_versions)  # 0-based version number
    k = n_versions[o]
    step = np.where(v == 0, rng.integers(60, 3600, len(o)), rng.integers(3600, 40 * 3600, len(o)))
    lud = purchase[o] + np.zeros(len(o), "timedelta64[s]")
    offsets = pd.Series(step).groupby(o).cumsum().to_numpy().astype("timedelta64[s]")
    lud = np.minimum(purchase[o] + offsets, end)
    status = np.where(v == k - 1, final[o], np.where(v == k - 2, "Unshipped", "Pending")).astype(object)
    status[(k == 3) & (v == 0)] = "Pending"
    dt = lud.astype("datetime64[D]")
    # the API returns an order once per day (its state at fetch time): keep the last version of each order per day
    last_of_day = np.ones(len(o), bool)
    last_of_day[:-1] = (o[1:] != o[:-1]) | (dt[1:] != dt[:-1])
    o, lud, status, dt = o[last_of_day], lud[last_of_day], status[last_of_day], dt[last_of_day]
    priced = status != "Pending"

    # ----- items per version
    sku_weights = 1.0 / np.arange(1, n_skus + 1) ** 0.8
    order_sku = rng.choice(n_skus, size=(n_orders, 2), p=sku_weights / sku_weights.sum())
    qty = rng.integers(1, 6, (n_orders, 2))
    unit_cents = rng.integers(500, 10_000, n_skus)
    iv = np.repeat(np.arange(len(o)), n_items[o])  # version index of each item row
    slot = np.arange(len(iv)) - np.repeat(np.cumsum(n_items[o]) - n_items[o], n_items[o])
    io = o[iv]
    sku = order_sku[io, slot]
    q = qty[io, slot]
    shipped = np.where(status[iv] == "Shipped", q, 0)
    cents = unit_cents[sku] * q

    orders_cols = {
        "amazon_order_id": order_ids.take(pa.array(o)),
        "purchase_date": purchase[o],
        "last_update_date": lud,
        "order_status": status,
        "fulfillment_channel": np.where(afn[o], "AFN", "MFN"),
        "sales_channel": SALES_CHANNELS[market[o]],
        "marketplace_id": MARKETPLACES[market[o]],
        "order_total_currency_code": np.where(priced, CURRENCIES[market[o]], None),
        "latest_ship_date": purchase[o] + np.timedelta64(2 * DAY_S, "s"),
        "is_quarantined": np.zeros(len(o), bool),
    }
    item_cols = {
        "amazon_order_id": order_ids.take(pa.array(io)),
        "order_last_update_date": lud[iv],
        "order_item_id": _digits(_scatter(io * 2 + slot, 10**14, seed + 1), 14),  # 14 digits, stable per line
        "seller_sku": np.char.add("SKU-", sku.astype(str)),
        "asin": np.char.add("B0", sku.astype(str)),
        "quantity_ordered": q.astype(np.int32),
        "quantity_shipped": shipped.astype(np.int32),
        "item_price_currency_code": np.where(priced[iv], CURRENCIES[market[io]], None),
        "is_quarantined": np.zeros(len(iv), bool),
    }
    price_array = _money(cents, priced[iv])

    for table, cols, day_of, schema, extra in (
        ("orders", orders_cols, dt, ORDERS_SCHEMA, {}),
        ("order_items", item_cols, dt[iv], ORDER_ITEMS_SCHEMA, {"item_price_amount": price_array}),
    ):
        order_by = np.argsort(day_of, kind="stable")
        days_sorted = day_of[order_by]
        bounds = np.searchsorted(days_sorted, np.arange(days_sorted[0], days_sorted[-1] + 1))
        bounds = np.append(bounds, len(order_by))
        take = pa.array(order_by)
        full = _table({**{c: (a.take(take) if isinstance(a, pa.Array) else a[order_by]) for c, a in cols.items()},
                       **{c: a.take(take) for c, a in extra.items()}}, schema, len(order_by))
        first_day = days_sorted[0]
        for i in range(len(bounds) - 1):
            lo, hi = bounds[i], bounds[i + 1]
            folder = out / table / f"dt={first_day + np.timedelta64(i, 'D')}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(full.slice(lo, hi - lo), folder / "part-0.parquet", compression="zstd")
    return {"orders": n_orders, "order_versions": len(o), "item_rows": len(iv)}


# --------------------------------------------------------------------------------------------- pandas


def _read(data_dir: Path, table: str, columns: list[str]) -> pd.DataFrame:
    dataset = ds.dataset(data_dir / table, format="parquet", partitioning="hive")
    df = dataset.to_table(columns=[c for c in columns if c != "dt"] + ["dt"]).to_pandas()
    df["dt"] = pd.to_datetime(df["dt"].astype(str)).dt.date
    return df


def _local_days(moments: pd.Series, zones: pd.Series) -> pd.Series:
    """The date of each UTC moment in its row's time zone (midnight, no zone)."""
    days = pd.Series(pd.NaT, index=moments.index, dtype="datetime64[us]")
    for zone in zones.unique():
        rows = zones == zone
        days[rows] = moments[rows].dt.tz_convert(zone).dt.tz_localize(None).dt.floor("D")
    return days


def _dense(keys: pd.DataFrame, key_cols: list[str], first_day: pd.Series, last_day) -> pd.DataFrame:
    """Every day from each key's first day to last_day."""
    lengths = (pd.Timestamp(last_day) - pd.to_datetime(first_day)).dt.days.to_numpy() + 1
    idx = np.repeat(np.arange(len(keys)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out = keys.iloc[idx][key_cols].reset_index(drop=True)
    out["day"] = (pd.to_datetime(np.repeat(pd.to_datetime(first_day).to_numpy(), lengths))
                  + pd.to_timedelta(offsets, "D"))
    return out


def pandas_marts(data_dir: Path, out: Path, z: float = 3.0, min_history: int = 14) -> dict[str, pd.DataFrame]:
    """The models of dbt_like_sql/, re-implemented with pandas (same rules)."""
    raw_orders = _read(data_dir, "orders", [
        "amazon_order_id", "purchase_date", "last_update_date", "order_status", "fulfillment_channel",
        "sales_channel", "marketplace_id", "order_total_currency_code", "latest_ship_date", "is_quarantined"])
    raw_items = _read(data_dir, "order_items", [
        "amazon_order_id", "order_item_id", "seller_sku", "asin", "quantity_ordered", "quantity_shipped",
        "item_price_amount", "item_price_currency_code", "is_quarantined"])

    # ----- staging
    # an unreadable (null) last_update_date is the oldest version, as in stg_orders
    raw_orders = raw_orders.sort_values(["amazon_order_id", "last_update_date", "dt"], kind="stable", na_position="first")
    g = raw_orders.groupby("amazon_order_id", sort=False)
    history = raw_orders[["amazon_order_id", "order_status", "last_update_date", "dt"]].copy()
    history["version_number"] = g.cumcount() + 1
    history["previous_status"] = g["order_status"].shift()
    history["valid_to"] = g["last_update_date"].shift(-1)
    history["is_status_change"] = history["previous_status"].ne(history["order_status"])
    history["status_run"] = history.groupby("amazon_order_id", sort=False)["is_status_change"].cumsum()
    history["status_since"] = history.groupby(["amazon_order_id", "status_run"], sort=False)["last_update_date"].transform("min")
    history["is_current"] = g.cumcount(ascending=False).eq(0)
    stg_orders = raw_orders.drop_duplicates("amazon_order_id", keep="last").copy()
    stg_orders["version_count"] = g.size().reindex(stg_orders["amazon_order_id"]).to_numpy()
    stg_orders["purchase_day"] = stg_orders["purchase_date"].dt.floor("D")
    stg_orders["marketplace_timezone"] = stg_orders["marketplace_id"].map(MARKETPLACE_TIMEZONES).fillna("UTC")
    stg_orders["purchase_day_local"] = _local_days(stg_orders["purchase_date"], stg_orders["marketplace_timezone"])

    items = raw_items.merge(
        stg_orders[["amazon_order_id", "dt", "marketplace_id", "order_total_currency_code"]], on=["amazon_order_id", "dt"])
    market_ccy = (items.dropna(subset=["item_price_currency_code"]).groupby("marketplace_id")["item_price_currency_code"]
                  .agg(lambda s: s.mode().iloc[0]))
    items["currency_code"] = (items["item_price_currency_code"].fillna(items["order_total_currency_code"])
                              .fillna(items["marketplace_id"].map(market_ccy)))
    items["is_unpriced"] = items["item_price_amount"].isna()
    stg_items = items

    # ----- sku_daily_sales and sales_by_channel
    lines = stg_items.merge(
        stg_orders[["amazon_order_id", "purchase_day", "purchase_day_local", "marketplace_timezone", "sales_channel",
                    "fulfillment_channel", "order_status"]],
        on="amazon_order_id")
    lines = lines[lines["order_status"] != "Canceled"]
    lines = lines.assign(
        revenue=lines["item_price_amount"].fillna(0).astype(float),
        unpriced_units=np.where(lines["is_unpriced"], lines["quantity_ordered"], 0))

    def sales(keys: list[str]) -> pd.DataFrame:
        return lines.groupby(keys, dropna=False, sort=False).agg(
            orders=("amazon_order_id", "nunique"), units_ordered=("quantity_ordered", "sum"),
            units_shipped=("quantity_shipped", "sum"), revenue=("revenue", "sum"),
            unpriced_units=("unpriced_units", "sum"), has_unpriced_lines=("is_unpriced", "any")).reset_index()

    sku_daily = sales(["purchase_day", "purchase_day_local", "marketplace_timezone", "marketplace_id", "sales_channel",
                       "fulfillment_channel", "seller_sku", "asin", "currency_code"])
    by_channel = sales(["purchase_day", "purchase_day_local", "marketplace_timezone", "sales_channel",
                        "fulfillment_channel", "currency_code"])

    # ----- sku_sales_trends (on local days, the default)
    sku_days = (sku_daily.groupby(["seller_sku", "currency_code", "purchase_day_local"], sort=False)
                [["orders", "units_ordered", "units_shipped", "unpriced_units", "revenue"]].sum().reset_index()
                .rename(columns={"purchase_day_local": "day"}))
    last_day = sku_days["day"].max()
    firsts = sku_days.groupby(["seller_sku", "currency_code"], sort=False)["day"].min().reset_index()
    trends = _dense(firsts, ["seller_sku", "currency_code"], firsts["day"], last_day).merge(
        sku_days, on=["seller_sku", "currency_code", "day"], how="left").fillna(
        {"orders": 0, "units_ordered": 0, "units_shipped": 0, "unpriced_units": 0, "revenue": 0})
    trends = trends.sort_values(["seller_sku", "currency_code", "day"], kind="stable").reset_index(drop=True)
    gu = trends.groupby(["seller_sku", "currency_code"], sort=False)["units_ordered"]
    trends["units_7d"] = gu.transform(lambda s: s.rolling(7, min_periods=1).sum())
    trends["units_28d"] = gu.transform(lambda s: s.rolling(28, min_periods=1).sum())
    trends["units_prev_7d"] = gu.transform(lambda s: s.shift(7).rolling(7, min_periods=1).sum()).fillna(0)
    trends["units_ma_7d"] = trends["units_7d"] / 7
    trends["units_ma_28d"] = trends["units_28d"] / 28
    trends["units_wow_change"] = trends["units_7d"] - trends["units_prev_7d"]
    trends["units_wow_change_pct"] = trends["units_wow_change"] / trends["units_prev_7d"].replace(0, np.nan)
    ranks = trends.groupby(["seller_sku", "day"], sort=False)["units_28d"].sum().rename("sku_units_28d").reset_index()
    by_day = ranks.groupby("day", sort=False)["sku_units_28d"]
    ranks["sales_rank"] = by_day.rank(method="min", ascending=False)
    sku_count = by_day.transform("size")
    band = np.ceil(sku_count * 0.2)
    ranks["sales_label"] = np.where(ranks["sales_rank"] <= band, "top seller",
                                    np.where(ranks["sales_rank"] > sku_count - band, "low seller", "steady"))
    trends = trends.merge(ranks, on=["seller_sku", "day"], how="left")

    # ----- sku_channel_trends
    parts = []
    for dimension in ("sales_channel", "fulfillment_channel"):
        p = (sku_daily.groupby(["seller_sku", dimension, "purchase_day_local"], sort=False)["units_ordered"].sum()
             .reset_index())
        parts.append(p.rename(columns={dimension: "channel", "purchase_day_local": "day"}).assign(dimension=dimension))
    channel_days = pd.concat(parts, ignore_index=True)
    firsts = channel_days.groupby(["seller_sku", "dimension", "channel"], sort=False)["day"].min().reset_index()
    channels = _dense(firsts, ["seller_sku", "dimension", "channel"], firsts["day"], last_day).merge(
        channel_days, on=["seller_sku", "dimension", "channel", "day"], how="left").fillna({"units_ordered": 0})
    channels = channels.sort_values(["seller_sku", "dimension", "channel", "day"], kind="stable").reset_index(drop=True)
    gc = channels.groupby(["seller_sku", "dimension", "channel"], sort=False)["units_ordered"]
    channels["units_ma_7d"] = gc.transform(lambda s: s.rolling(7, min_periods=1).sum()) / 7
    channels["units_28d"] = gc.transform(lambda s: s.rolling(28, min_periods=1).sum())
    channels["units_prev_28d"] = gc.transform(lambda s: s.shift(28).rolling(28, min_periods=1).sum()).fillna(0)
    channels["units_ma_28d"] = channels["units_28d"] / 28
    totals = channels.groupby(["seller_sku", "dimension", "day"], sort=False)[["units_28d", "units_prev_28d"]].transform("sum")
    channels["share_28d"] = channels["units_28d"] / totals["units_28d"].replace(0, np.nan)
    channels["share_prev_28d"] = channels["units_prev_28d"] / totals["units_prev_28d"].replace(0, np.nan)
    channels["share_change"] = channels["share_28d"] - channels["share_prev_28d"]

    # ----- stuck_orders and sku_stuck_summary
    as_of = history["last_update_date"].max()
    current = history.loc[history["is_current"], ["amazon_order_id", "status_since"]]
    aged = stg_orders.merge(current, on="amazon_order_id")
    aged["hours_in_status"] = ((as_of - aged["status_since"]).dt.total_seconds() / 3600).round(2)
    pending = (aged["order_status"] == "Pending") & (aged["hours_in_status"] > 24)
    late = aged["order_status"].isin(["Unshipped", "PartiallyShipped"]) & (aged["latest_ship_date"] < as_of)
    unchanged = aged["order_status"].isin(["Pending", "Unshipped", "PartiallyShipped", "PendingAvailability"]) & (
        aged["hours_in_status"] > 24 * 7)
    stuck = aged[pending | late | unchanged].copy()
    stuck_lines = stuck[["amazon_order_id", "hours_in_status", "order_status"]].merge(stg_items, on="amazon_order_id")
    stuck_lines["unshipped"] = stuck_lines["quantity_ordered"] - stuck_lines["quantity_shipped"]
    stuck_summary = stuck_lines.groupby(["seller_sku", "asin"]).agg(
        stuck_orders=("amazon_order_id", "nunique"), stuck_units=("unshipped", "sum"),
        oldest_age_hours=("hours_in_status", "max")).reset_index()

    # ----- sku_trend_anomalies
    per_sku = trends.groupby(["seller_sku", "day"], sort=True)["units_ordered"].sum().reset_index()
    gs = per_sku.groupby("seller_sku", sort=False)["units_ordered"]
    per_sku["trailing_mean"] = gs.transform(lambda s: s.shift(1).rolling(28, min_periods=1).mean())
    per_sku["trailing_stddev"] = gs.transform(lambda s: s.shift(1).rolling(28, min_periods=2).std())
    per_sku["history_days"] = gs.transform(lambda s: s.shift(1).rolling(28, min_periods=1).count()).fillna(0)
    per_sku["score"] = (per_sku["units_ordered"] - per_sku["trailing_mean"]) / per_sku["trailing_stddev"].replace(0, np.nan)
    anomalies = per_sku[(per_sku["history_days"] >= min_history) & (per_sku["score"].abs() > z)].copy()
    anomalies["direction"] = np.where(anomalies["score"] > 0, "spike", "drop")

    result = {
        "stg_orders": stg_orders, "stg_order_items": stg_items, "stg_order_status_history": history,
        "sku_daily_sales": sku_daily, "sales_by_channel": by_channel, "sku_sales_trends": trends,
        "sku_channel_trends": channels, "stuck_orders": stuck, "sku_stuck_summary": stuck_summary,
        "sku_trend_anomalies": anomalies,
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, df in result.items():
        df.to_parquet(out / f"{name}.parquet", index=False)
    return result


# --------------------------------------------------------------------------------------------- main


def build_all(project: Project, data_dir: Path, label: str) -> tuple[float, float]:
    """Build every model once, print the time of each and of the whole, and return (wall s, CPU s)."""
    load_before = os.getloadavg()[0]
    print(f"\nDuckDB, {label} (wall / CPU of all threads, how each incremental model was refreshed):")
    t0, c0 = time.perf_counter(), cpu_seconds()
    last_wall, last_cpu = t0, c0
    with Build(project, data_dir) as build:
        for result in build.run():
            now, cpu_now = time.perf_counter(), cpu_seconds()
            print(f"  {result.name:28s} {result.materialized:11s} {now - last_wall:6.2f} s  {cpu_now - last_cpu:6.2f} s CPU"
                  f"  {result.refresh}")
            last_wall, last_cpu = now, cpu_now
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    print(f"DuckDB, {label}: all models {wall:.2f} s wall, {cpu:.2f} s CPU; load average {load_before:.1f} -> "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return wall, cpu


def model_digests(project: Project, data_dir: Path) -> dict[str, tuple[int, int]]:
    """Every model's row count and the sum of its rows' hashes, as a later session reads it."""
    with Build(project, data_dir) as build:
        return {name: build.con.execute(f"select count(*), sum(hash(m)) from {build.relation(name)} as m").fetchone()
                for name in project.order}


def _generate_and_report(data_dir: Path, rows: int, days: int) -> None:
    print(f"generated {generate(data_dir, rows, days)} in {days} partitions", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="approximate raw item rows (default 10M)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--keep", action="store_true", help="reuse generated data in --out if present")
    args = parser.parse_args(argv)

    data_dir = args.out / "data"
    if not (args.keep and (data_dir / "orders").exists()):
        shutil.rmtree(args.out, ignore_errors=True)
        t0 = time.perf_counter()
        # in a child process, so the peak RSS printed below is the builds', not the generator's
        child = multiprocessing.get_context("fork").Process(target=_generate_and_report, args=(data_dir, args.rows, args.days))
        child.start()
        child.join()
        if child.exitcode:
            return child.exitcode
        print(f"generated in {time.perf_counter() - t0:.1f} s")
    rss_start = peak_rss_mb()

    project = load_project()
    shutil.rmtree(data_dir / incremental.STATE_DIR, ignore_errors=True)
    duck_models, duck_cpu = build_all(project, data_dir, "from scratch")
    t1 = time.perf_counter()
    build_warehouse(data_dir, project)
    print(f"with the warehouse file: {duck_models + time.perf_counter() - t1:.2f} s; peak RSS {peak_rss_mb():.0f} MB "
          f"(before: {rss_start:.0f} MB)")
    digests = model_digests(project, data_dir)

    last_day = sorted(path.name for path in (data_dir / "orders").iterdir())[-1]
    held = args.out / "held"
    for table in ("orders", "order_items"):
        shutil.rmtree(held / table, ignore_errors=True)
        (held / table).mkdir(parents=True)
        (data_dir / table / last_day).rename(held / table / last_day)
    try:
        build_all(project, data_dir, f"incremental, {last_day} removed")
    finally:  # the data stays whole for --keep even if the build fails
        for table in ("orders", "order_items"):
            (held / table / last_day).rename(data_dir / table / last_day)
    daily, daily_cpu = build_all(project, data_dir, f"incremental, {last_day} landed again (a daily run)")
    after = model_digests(project, data_dir)
    differing = [name for name in project.order if after[name] != digests[name]]
    print("incremental result equals the build from scratch (row count and hash of every model): "
          + (f"no: {', '.join(differing)} differ" if differing else "yes"))

    if args.skip_pandas:
        return 0
    t0, c0 = time.perf_counter(), cpu_seconds()
    frames = pandas_marts(data_dir, args.out / "pandas")
    pandas_total, pandas_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    print(f"pandas: all models {pandas_total:.2f} s wall, {pandas_cpu:.2f} s CPU; peak RSS of the process now "
          f"{peak_rss_mb():.0f} MB")
    print(f"ratio pandas / DuckDB from scratch: {pandas_total / duck_models:.1f}x wall, {pandas_cpu / duck_cpu:.1f}x CPU")
    print(f"ratio pandas / DuckDB daily incremental run: {pandas_total / daily:.1f}x wall, {pandas_cpu / daily_cpu:.1f}x CPU")

    # cross-check: the two implementations agree on the totals
    import duckdb

    marts = data_dir / "marts"
    duck = duckdb.sql(f"select currency, sum(units_ordered), sum(revenue)::double from '{marts}/sku_daily_sales.parquet' "
                      "group by 1 order by 1").fetchall()
    pand = frames["sku_daily_sales"].groupby("currency_code")[["units_ordered", "revenue"]].sum().sort_index()
    print("check sku_daily_sales per currency  duckdb:", [(c, int(u), round(r, 2)) for c, u, r in duck])
    print("                                    pandas:", [(c, int(r.units_ordered), round(r.revenue, 2)) for c, r in pand.iterrows()])
    duck_labels = duckdb.sql(f"select sales_label, count(distinct seller_sku) from '{marts}/sku_sales_trends.parquet' "
                             f"where day = (select max(day) from '{marts}/sku_sales_trends.parquet') group by 1 "
                             "order by 1").fetchall()
    trends = frames["sku_sales_trends"]
    pandas_labels = trends[trends["day"] == trends["day"].max()].groupby("sales_label")["seller_sku"].nunique()
    print("check sales labels on the last day  duckdb:", duck_labels)
    print("                                    pandas:", list(pandas_labels.items()))
    counts = {name: digests[name][0] for name in frames}
    mismatched = {name: (counts[name], len(df)) for name, df in frames.items() if counts[name] != len(df)}
    print("row counts (duckdb):", counts)
    print("row counts differ:", mismatched or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
