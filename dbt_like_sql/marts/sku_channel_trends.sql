-- SKU trends by sales channel and by fulfillment channel, and how each channel's share of a SKU moves.
-- GRAIN: one row per seller_sku, dimension ('sales_channel' or 'fulfillment_channel'), channel and day, dense:
-- every day from the SKU's first sale to the last purchase day in the data.
-- RULES: built on sku_daily_sales (Canceled excluded, Pending units count, each order once); units only, so
-- currencies never mix. units_ma_7d / units_ma_28d are the units of the 7 / 28 days ending on the day divided
-- by 7 / 28. share_latest_28d is the channel's share of the SKU's units (within the dimension) over the
-- latest 28 days of data, share_prev_28d the same over the 28 days before, share_change their difference
-- (null when the SKU sold nothing in a window): a SKU moving from MFN to AFN shows +AFN and -MFN.
with

daily_sales as (

    select * from {{ ref('sku_daily_sales') }}

),

channel_days as (

    select seller_sku, 'sales_channel' as dimension, sales_channel as channel, purchase_day as day,
        sum(units_ordered) as units_ordered
    from daily_sales
    group by all

    union all

    select seller_sku, 'fulfillment_channel' as dimension, fulfillment_channel as channel, purchase_day as day,
        sum(units_ordered) as units_ordered
    from daily_sales
    group by all

),

data_range as (

    select max(day) as last_day from channel_days

),

series as (

    -- one integer id per (SKU, dimension, channel): the dense part below works on small keys
    select
        row_number() over (order by seller_sku, dimension, channel) as series_id,
        seller_sku,
        dimension,
        channel,
        min(min(day)) over (partition by seller_sku) as first_day
    from channel_days
    group by seller_sku, dimension, channel

),

series_days as (

    select series.series_id, channel_days.day, channel_days.units_ordered
    from channel_days
    inner join series
        on channel_days.seller_sku is not distinct from series.seller_sku
        and channel_days.dimension = series.dimension
        and channel_days.channel is not distinct from series.channel

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
        cast(coalesce(series_days.units_ordered, 0) as bigint) as units_ordered
    from calendar
    left join series_days on calendar.series_id = series_days.series_id and calendar.day = series_days.day

),

windowed as (

    select
        *,
        sum(units_ordered) over last_7_days / 7.0 as units_ma_7d,
        sum(units_ordered) over last_28_days / 28.0 as units_ma_28d
    from dense
    window
        last_7_days as (partition by series_id order by day rows between 6 preceding and current row),
        last_28_days as (partition by series_id order by day rows between 27 preceding and current row)

),

window_units as (

    select
        dense.series_id,
        cast(coalesce(sum(dense.units_ordered) filter (where dense.day > data_range.last_day - 28), 0)
            as bigint) as units_latest_28d,
        cast(coalesce(sum(dense.units_ordered) filter (
            where dense.day > data_range.last_day - 56 and dense.day <= data_range.last_day - 28
        ), 0) as bigint) as units_prev_28d
    from dense
    cross join data_range
    group by dense.series_id

),

shares as (

    select
        series.*,
        window_units.units_latest_28d,
        window_units.units_prev_28d,
        window_units.units_latest_28d / nullif(sum(window_units.units_latest_28d) over sku_dimension, 0)
            as share_latest_28d,
        window_units.units_prev_28d / nullif(sum(window_units.units_prev_28d) over sku_dimension, 0)
            as share_prev_28d
    from series
    inner join window_units on series.series_id = window_units.series_id
    window sku_dimension as (partition by series.seller_sku, series.dimension)

),

final as (

    select
        shares.seller_sku,
        shares.dimension,
        shares.channel,
        windowed.day,
        windowed.units_ordered,
        windowed.units_ma_7d,
        windowed.units_ma_28d,
        shares.units_latest_28d,
        shares.units_prev_28d,
        shares.share_latest_28d,
        shares.share_prev_28d,
        shares.share_latest_28d - shares.share_prev_28d as share_change
    from windowed
    inner join shares on windowed.series_id = shares.series_id

)

select * from final
