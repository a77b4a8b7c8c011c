-- SKU-days whose units depart sharply from the SKU's recent trend.
-- GRAIN: one row per account, seller_sku and day flagged as a spike or a drop.
-- ACCOUNT: a SKU's units and baseline are within one seller account ('default' for data without accounts).
-- DAYS: sku_sales_trends' day: each order's marketplace-local purchase day, or with var trend_utc_days the UTC one.
-- RULES: units are a SKU's units_ordered per day over all currencies and channels (from sku_sales_trends,
-- dense, so days without sales count as 0). The baseline is the mean and sample standard deviation of the
-- var anomaly_window_days (default 28) days before the day, the day itself excluded. A day is flagged when
-- the baseline has at least var anomaly_min_history_days (default 14) days and
-- |score| = |units - mean| / stddev > var anomaly_z (default 3); direction is 'spike' (above) or 'drop'.
-- A flat history (stddev 0) has no score and is never flagged.
-- INCREMENTAL: a day's score reads the window before it, so a run recomputes the days from the earliest day
-- sku_sales_trends changed on (every account from that day on), reading that many days before it.
{{ config(materialized='incremental', unique_key='day', incremental_strategy='tail') }}
with

trends as (

    select * from {{ ref('sku_sales_trends') }}

),

sku_days as (

    select account, seller_sku, day, cast(sum(units_ordered) as bigint) as units_ordered
    from trends
    {% if is_incremental() %}
    where day >= {{ recompute_from() }} - {{ var('anomaly_window_days', 28) }}
    {% endif %}
    group by all

),

moments as (

    -- exact integer sums, so the baseline does not depend on how the window is evaluated
    select
        *,
        count(*) over baseline_window as history_days,
        sum(units_ordered) over baseline_window as units_sum,
        sum(units_ordered * units_ordered) over baseline_window as units_squared_sum
    from sku_days
    window baseline_window as (
        partition by account, seller_sku order by day
        range between interval {{ var('anomaly_window_days', 28) }} day preceding and interval 1 day preceding
    )

),

baselines as (

    select
        * exclude (units_sum, units_squared_sum),
        units_sum / history_days as trailing_mean,
        sqrt(
            (history_days * units_squared_sum - units_sum * units_sum) / nullif(history_days * (history_days - 1), 0)
        ) as trailing_stddev
    from moments

),

scored as (

    select
        *,
        (units_ordered - trailing_mean) / nullif(trailing_stddev, 0) as score
    from baselines

),

final as (

    select
        account,
        seller_sku,
        day,
        units_ordered,
        trailing_mean,
        trailing_stddev,
        history_days,
        score,
        case when score > 0 then 'spike' else 'drop' end as direction
    from scored
    where history_days >= {{ var('anomaly_min_history_days', 14) }}
        and abs(score) > {{ var('anomaly_z', 3.0) }}

)

select * from final
