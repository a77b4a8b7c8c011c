-- Sales trend of every SKU: daily units and revenue with moving averages, week-over-week change, rank and label.
-- GRAIN: one row per account, seller_sku, currency and day, dense: every day from the SKU's first sale in that
-- currency to the account's last purchase day in the data (days without sales have 0 units).
-- ACCOUNT: every figure, rank and label is within one seller account ('default' for data without accounts).
-- DAYS: day is each order's marketplace-local purchase day (sku_daily_sales.purchase_day_local, as Seller Central
-- counts days); with var trend_utc_days (default false) it is the UTC purchase_day.
-- RULES: built on sku_daily_sales (so Canceled is excluded, Pending units count, each order once). Currency
-- stays in the grain, so revenue is never added across currencies. units_ma_7d / units_ma_28d are the units
-- of the 7 / 28 days ending on the day divided by 7 / 28 (days before the first sale count as 0).
-- units_wow_change compares the 7 days ending on the day with the 7 days before (pct is null when those sold
-- nothing). sku_units_28d is the SKU's units over the 28 days ending on the day, all currencies together;
-- sales_rank ranks the account's SKUs on sale by then by it, and the top share (var trend_top_share, default 0.2) of
-- them are 'top seller', the bottom share 'low seller', the rest 'steady'. On the account's last day these
-- are its best and worst sellers of the latest 28 days.
-- Rows of an unknown (quarantined) purchase day have no day and are left out.
-- INCREMENTAL: a day's row reads the 28 days ending on it, so a run recomputes the days from the day before the
-- earliest (UTC) purchase day sku_daily_sales changed on (lookback=1: a local day can be the UTC day before),
-- reading the 27 days before it (every account from that day on).
{{ config(materialized='incremental', unique_key='day', incremental_strategy='tail', lookback=1) }}
with

daily_sales as (

    select *, {{ 'purchase_day' if var('trend_utc_days', false) else 'purchase_day_local' }} as day
    from {{ ref('sku_daily_sales') }}
    where purchase_day is not null

),

computed_days as (

    -- the first day of sales this build's windows read
    select
        {% if is_incremental() %}{{ recompute_from() }}{% else %}(select min(day) from daily_sales){% endif %} - 27
            as first_read_day

),

last_days as (

    -- the last day of each account's data
    select account, max(day) as last_day
    from daily_sales
    group by account

),

series as (

    -- one integer id per (account, SKU, currency), with its first sale: the dense part below works on small keys
    select
        row_number() over (order by account, seller_sku, currency) as series_id,
        account,
        seller_sku,
        currency,
        min(day) as first_sale_day
    from daily_sales
    group by account, seller_sku, currency

),

sku_days as (

    select
        account,
        seller_sku,
        currency,
        day,
        sum(orders) as orders,
        sum(units_ordered) as units_ordered,
        sum(units_shipped) as units_shipped,
        sum(unpriced_units) as unpriced_units,
        sum(revenue) as revenue
    from daily_sales
    where day >= (select first_read_day from computed_days)
    group by all

),

series_days as (

    select series.series_id, sku_days.* exclude (account, seller_sku, currency)
    from sku_days
    inner join series
        on sku_days.account = series.account
        and sku_days.seller_sku is not distinct from series.seller_sku
        and sku_days.currency is not distinct from series.currency

),

series_spans as (

    select
        series.series_id,
        greatest(series.first_sale_day, computed_days.first_read_day) as from_day,
        last_days.last_day
    from series
    cross join computed_days
    inner join last_days on series.account = last_days.account

),

calendar as (

    select series_spans.series_id, cast(series_spans.from_day + cast(day_offset as integer) as date) as day
    from series_spans
    cross join unnest(range(0, series_spans.last_day - series_spans.from_day + 1)) as offsets (day_offset)

),

dense as (

    select
        calendar.series_id,
        calendar.day,
        cast(coalesce(series_days.orders, 0) as bigint) as orders,
        cast(coalesce(series_days.units_ordered, 0) as bigint) as units_ordered,
        cast(coalesce(series_days.units_shipped, 0) as bigint) as units_shipped,
        cast(coalesce(series_days.unpriced_units, 0) as bigint) as unpriced_units,
        cast(coalesce(series_days.revenue, 0) as decimal(18, 2)) as revenue
    from calendar
    left join series_days on calendar.series_id = series_days.series_id and calendar.day = series_days.day

),

windowed as (

    select
        dense.*,
        series.account,
        series.seller_sku,
        series.currency,
        cast(sum(dense.units_ordered) over last_7_days as bigint) as units_7d,
        cast(sum(dense.units_ordered) over last_28_days as bigint) as units_28d,
        cast(coalesce(sum(dense.units_ordered) over previous_7_days, 0) as bigint) as units_prev_7d
    from dense
    inner join series on dense.series_id = series.series_id
    window
        last_7_days as (partition by dense.series_id order by dense.day rows between 6 preceding and current row),
        last_28_days as (partition by dense.series_id order by dense.day rows between 27 preceding and current row),
        previous_7_days as (partition by dense.series_id order by dense.day rows between 13 preceding and 7 preceding)

),

sku_windows as (

    select account, seller_sku, day, cast(sum(units_28d) as bigint) as sku_units_28d
    from windowed
    group by account, seller_sku, day

),

ranked as (

    select
        *,
        rank() over (partition by account, day order by sku_units_28d desc) as sales_rank,
        count(*) over same_day as sku_count,
        ceil(count(*) over same_day * {{ var('trend_top_share', 0.2) }}) as band_size
    from sku_windows
    window same_day as (partition by account, day)

),

final as (

    select
        windowed.account,
        windowed.seller_sku,
        windowed.currency,
        windowed.day,
        windowed.orders,
        windowed.units_ordered,
        windowed.units_shipped,
        windowed.unpriced_units,
        windowed.revenue,
        windowed.units_7d / 7.0 as units_ma_7d,
        windowed.units_28d / 28.0 as units_ma_28d,
        windowed.units_7d,
        windowed.units_prev_7d,
        windowed.units_7d - windowed.units_prev_7d as units_wow_change,
        (windowed.units_7d - windowed.units_prev_7d) / nullif(windowed.units_prev_7d, 0) as units_wow_change_pct,
        windowed.units_28d,
        ranked.sku_units_28d,
        ranked.sales_rank,
        case
            when ranked.sales_rank <= ranked.band_size then 'top seller'
            when ranked.sales_rank > ranked.sku_count - ranked.band_size then 'low seller'
            else 'steady'
        end as sales_label
    from windowed
    inner join ranked
        on windowed.account = ranked.account
        and windowed.seller_sku is not distinct from ranked.seller_sku
        and windowed.day = ranked.day

)

select * from final
