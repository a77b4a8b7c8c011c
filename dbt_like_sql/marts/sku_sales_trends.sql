-- Sales trend of every SKU: daily units and revenue with moving averages, week-over-week change and a label.
-- GRAIN: one row per seller_sku, currency and day, dense: every day from the SKU's first sale in that
-- currency to the last purchase day in the data (days without sales have 0 units).
-- RULES: built on sku_daily_sales (so Canceled is excluded, Pending units count, each order once). Currency
-- stays in the grain, so revenue is never added across currencies. units_ma_7d / units_ma_28d are the units
-- of the 7 / 28 days ending on the day divided by 7 / 28 (days before the first sale count as 0).
-- units_wow_change compares the 7 days ending on the day with the 7 days before (pct is null when those sold
-- nothing). sales_rank ranks SKUs (all currencies together) by units over the latest 28 days of data;
-- the top share (var trend_top_share, default 0.2) of SKUs are 'top seller', the bottom share 'low seller',
-- the rest 'steady'.
with

daily_sales as (

    select * from {{ ref('sku_daily_sales') }}

),

sku_days as (

    select
        seller_sku,
        currency,
        purchase_day as day,
        sum(orders) as orders,
        sum(units_ordered) as units_ordered,
        sum(units_shipped) as units_shipped,
        sum(unpriced_units) as unpriced_units,
        sum(revenue) as revenue
    from daily_sales
    group by all

),

data_range as (

    select max(day) as last_day from sku_days

),

series as (

    -- one integer id per (SKU, currency): the dense part below works on small keys
    select
        row_number() over (order by seller_sku, currency) as series_id,
        seller_sku,
        currency,
        min(day) as first_day
    from sku_days
    group by seller_sku, currency

),

series_days as (

    select series.series_id, sku_days.* exclude (seller_sku, currency)
    from sku_days
    inner join series
        on sku_days.seller_sku is not distinct from series.seller_sku
        and sku_days.currency is not distinct from series.currency

),

calendar as (

    select series.series_id, cast(series.first_day + cast(day_offset as integer) as date) as day
    from series
    cross join data_range
    cross join unnest(range(0, data_range.last_day - series.first_day + 1)) as offsets (day_offset)

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
        *,
        cast(sum(units_ordered) over last_7_days as bigint) as units_7d,
        cast(sum(units_ordered) over last_28_days as bigint) as units_28d,
        cast(coalesce(sum(units_ordered) over previous_7_days, 0) as bigint) as units_prev_7d
    from dense
    window
        last_7_days as (partition by series_id order by day rows between 6 preceding and current row),
        last_28_days as (partition by series_id order by day rows between 27 preceding and current row),
        previous_7_days as (partition by series_id order by day rows between 13 preceding and 7 preceding)

),

latest_units as (

    select series.seller_sku, cast(sum(dense.units_ordered) as bigint) as units_latest_28d
    from dense
    inner join series on dense.series_id = series.series_id
    cross join data_range
    where dense.day > data_range.last_day - 28
    group by series.seller_sku

),

ranked as (

    select
        seller_sku,
        units_latest_28d,
        rank() over (order by units_latest_28d desc) as sales_rank,
        count(*) over () as sku_count,
        ceil(count(*) over () * {{ var('trend_top_share', 0.2) }}) as band_size
    from latest_units

),

final as (

    select
        series.seller_sku,
        series.currency,
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
        ranked.units_latest_28d,
        ranked.sales_rank,
        case
            when ranked.sales_rank <= ranked.band_size then 'top seller'
            when ranked.sales_rank > ranked.sku_count - ranked.band_size then 'low seller'
            else 'steady'
        end as sales_label
    from windowed
    inner join series on windowed.series_id = series.series_id
    left join ranked on series.seller_sku is not distinct from ranked.seller_sku

)

select * from final
