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

calendar as (

    select
        channels.seller_sku,
        channels.dimension,
        channels.channel,
        cast(skus.first_day + cast(day_offset as integer) as date) as day
    from (select distinct seller_sku, dimension, channel from channel_days) as channels
    inner join (
        select seller_sku, min(day) as first_day from channel_days group by seller_sku
    ) as skus on channels.seller_sku is not distinct from skus.seller_sku
    cross join data_range
    cross join unnest(range(0, data_range.last_day - skus.first_day + 1)) as offsets (day_offset)

),

dense as (

    select seller_sku, dimension, channel, day, cast(sum(units_ordered) as bigint) as units_ordered
    from (
        select * from channel_days
        union all by name
        select seller_sku, dimension, channel, day, 0 as units_ordered from calendar
    )
    group by all

),

windowed as (

    select
        *,
        sum(units_ordered) over last_7_days / 7.0 as units_ma_7d,
        sum(units_ordered) over last_28_days / 28.0 as units_ma_28d
    from dense
    window
        last_7_days as (
            partition by seller_sku, dimension, channel order by day rows between 6 preceding and current row
        ),
        last_28_days as (
            partition by seller_sku, dimension, channel order by day rows between 27 preceding and current row
        )

),

window_units as (

    select
        dense.seller_sku,
        dense.dimension,
        dense.channel,
        cast(coalesce(sum(dense.units_ordered) filter (where dense.day > data_range.last_day - 28), 0)
            as bigint) as units_latest_28d,
        cast(coalesce(sum(dense.units_ordered) filter (
            where dense.day > data_range.last_day - 56 and dense.day <= data_range.last_day - 28
        ), 0) as bigint) as units_prev_28d
    from dense
    cross join data_range
    group by all

),

shares as (

    select
        *,
        units_latest_28d / nullif(sum(units_latest_28d) over sku_dimension, 0) as share_latest_28d,
        units_prev_28d / nullif(sum(units_prev_28d) over sku_dimension, 0) as share_prev_28d
    from window_units
    window sku_dimension as (partition by seller_sku, dimension)

),

final as (

    select
        windowed.seller_sku,
        windowed.dimension,
        windowed.channel,
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
    left join shares
        on windowed.seller_sku is not distinct from shares.seller_sku
        and windowed.dimension = shares.dimension
        and windowed.channel is not distinct from shares.channel

)

select * from final
