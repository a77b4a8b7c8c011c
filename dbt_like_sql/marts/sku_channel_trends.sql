-- SKU trends by sales channel and by fulfillment channel, and how each channel's share of a SKU moves.
-- GRAIN: one row per account, seller_sku, dimension ('sales_channel' or 'fulfillment_channel'), channel and day,
-- dense: every day from the SKU's first sale in the channel to the account's last purchase day in the data.
-- ACCOUNT: every figure and share is within one seller account ('default' for data without accounts).
-- DAYS: day is each order's marketplace-local purchase day (sku_daily_sales.purchase_day_local, as Seller Central
-- counts days); with var trend_utc_days (default false) it is the UTC purchase_day.
-- RULES: built on sku_daily_sales (Canceled excluded, Pending units count, each order once); units only, so
-- currencies never mix. units_ma_7d / units_ma_28d are the units of the 7 / 28 days ending on the day divided
-- by 7 / 28. units_28d are the units of the 28 days ending on the day, units_prev_28d those of the 28 days
-- before. share_28d is the channel's share of the SKU's units (within the dimension) over the 28 days ending on
-- the day, share_prev_28d the same over the 28 days before, share_change their difference (null when the SKU
-- sold nothing in a window): a SKU moving from MFN to AFN shows +AFN and -MFN. On the account's last day these
-- compare the latest 28 days with the 28 days before.
-- Rows of an unknown (quarantined) purchase day have no day and are left out.
-- INCREMENTAL: a day's row reads the 56 days ending on it, so a run recomputes the days from the day before the
-- earliest (UTC) purchase day sku_daily_sales changed on (lookback=1: a local day can be the UTC day before),
-- reading the 55 days before it (every account from that day on).
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
        {% if is_incremental() %}{{ recompute_from() }}{% else %}(select min(day) from daily_sales){% endif %} - 55
            as first_read_day

),

last_days as (

    -- the last day of each account's data
    select account, max(day) as last_day
    from daily_sales
    group by account

),

recent_sales as (

    select *
    from daily_sales
    where day >= (select first_read_day from computed_days)

),

channel_days as (

    select account, seller_sku, 'sales_channel' as dimension, sales_channel as channel, day,
        sum(units_ordered) as units_ordered
    from recent_sales
    group by all

    union all

    select account, seller_sku, 'fulfillment_channel' as dimension, fulfillment_channel as channel, day,
        sum(units_ordered) as units_ordered
    from recent_sales
    group by all

),

channels as (

    select account, seller_sku, 'sales_channel' as dimension, sales_channel as channel, min(day) as first_sale_day
    from daily_sales
    group by all

    union all

    select account, seller_sku, 'fulfillment_channel' as dimension, fulfillment_channel as channel,
        min(day) as first_sale_day
    from daily_sales
    group by all

),

series as (

    -- one integer id per (account, SKU, dimension, channel) and per (account, SKU, dimension): the dense part works
    -- on small keys
    select
        row_number() over (order by account, seller_sku, dimension, channel) as series_id,
        dense_rank() over (order by account, seller_sku, dimension) as share_group,
        *
    from channels

),

series_days as (

    select series.series_id, channel_days.day, channel_days.units_ordered
    from channel_days
    inner join series
        on channel_days.account = series.account
        and channel_days.seller_sku is not distinct from series.seller_sku
        and channel_days.dimension = series.dimension
        and channel_days.channel is not distinct from series.channel

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
        cast(coalesce(series_days.units_ordered, 0) as bigint) as units_ordered
    from calendar
    left join series_days on calendar.series_id = series_days.series_id and calendar.day = series_days.day

),

windowed as (

    select
        dense.*,
        series.share_group,
        sum(dense.units_ordered) over last_7_days / 7.0 as units_ma_7d,
        cast(sum(dense.units_ordered) over last_28_days as bigint) as units_28d,
        cast(coalesce(sum(dense.units_ordered) over previous_28_days, 0) as bigint) as units_prev_28d
    from dense
    inner join series on dense.series_id = series.series_id
    window
        last_7_days as (partition by dense.series_id order by dense.day rows between 6 preceding and current row),
        last_28_days as (partition by dense.series_id order by dense.day rows between 27 preceding and current row),
        previous_28_days as (partition by dense.series_id order by dense.day rows between 55 preceding and 28 preceding)

),

shares as (

    select
        *,
        units_28d / nullif(sum(units_28d) over same_sku_day, 0) as share_28d,
        units_prev_28d / nullif(sum(units_prev_28d) over same_sku_day, 0) as share_prev_28d
    from windowed
    window same_sku_day as (partition by share_group, day)

),

final as (

    select
        series.account,
        series.seller_sku,
        series.dimension,
        series.channel,
        shares.day,
        shares.units_ordered,
        shares.units_ma_7d,
        shares.units_28d / 28.0 as units_ma_28d,
        shares.units_28d,
        shares.units_prev_28d,
        shares.share_28d,
        shares.share_prev_28d,
        shares.share_28d - shares.share_prev_28d as share_change
    from shares
    inner join series on shares.series_id = series.series_id

)

select * from final
