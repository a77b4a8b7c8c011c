-- Daily sales per SKU, per marketplace, sales channel, fulfillment channel and currency.
-- GRAIN: one row per account, purchase_day (UTC), purchase_day_local, marketplace_id, sales_channel,
-- fulfillment_channel, seller_sku, asin and currency.
-- ACCOUNT: the seller account ('default' for data without accounts); accounts are never added together.
-- DAYS: purchase_day is the UTC day of purchase; purchase_day_local is the day in marketplace_timezone, the
-- marketplace's time zone as Seller Central reports it ('UTC' for a marketplace stg_orders does not list). A UTC
-- day's orders can span two local days (orders after 00:00Z in Pacific time fall on the local day before), so
-- sum over either day: a day's totals by purchase_day are the UTC figures, by purchase_day_local and
-- marketplace_id Seller Central's.
-- RULES: each order counts once, in its current version (stg_orders / stg_order_items), on the day it was
-- purchased. Every status except Canceled is a sale (Pending, Unshipped, PartiallyShipped, Shipped,
-- Unfulfillable, PendingAvailability). Pending lines have no price yet: their units are in units_ordered and
-- in unpriced_units, they add nothing to revenue, and has_unpriced_lines flags the row. revenue is the sum of
-- item_price_amount (line totals, before tax and promotions) in the row's currency; currencies are never added.
-- An order whose purchase date was quarantined (undecodable, kept as null) counts on a null purchase_day.
-- INCREMENTAL: a (UTC) purchase day's rows depend on that day's orders only, so a run recomputes just the days of
-- the orders that changed (the day of every account) and keeps the rest.
{{ config(materialized='incremental', unique_key='purchase_day') }}
with

order_items as (

    select * from {{ ref('stg_order_items') }}

),

order_lines as (

    select
        account,
        purchase_day,
        purchase_day_local,
        marketplace_timezone,
        marketplace_id,
        sales_channel,
        fulfillment_channel,
        seller_sku,
        asin,
        currency_code as currency,
        amazon_order_id,
        quantity_ordered,
        quantity_shipped,
        item_price_amount,
        is_unpriced
    from order_items
    where order_status is distinct from 'Canceled'

),

order_totals as (

    -- one row per order and grain first, so orders is a plain count below (cheaper than count distinct)
    select
        account,
        purchase_day,
        purchase_day_local,
        marketplace_timezone,
        marketplace_id,
        sales_channel,
        fulfillment_channel,
        seller_sku,
        asin,
        currency,
        amazon_order_id,
        sum(quantity_ordered) as units_ordered,
        sum(quantity_shipped) as units_shipped,
        sum(item_price_amount) as revenue,
        sum(case when is_unpriced then quantity_ordered else 0 end) as unpriced_units,
        bool_or(is_unpriced) as has_unpriced_lines
    from order_lines
    group by all

),

final as (

    select
        account,
        purchase_day,
        purchase_day_local,
        marketplace_timezone,
        marketplace_id,
        sales_channel,
        fulfillment_channel,
        seller_sku,
        asin,
        currency,
        count(*) as orders,
        cast(sum(units_ordered) as bigint) as units_ordered,
        cast(sum(units_shipped) as bigint) as units_shipped,
        cast(coalesce(sum(revenue), 0) as decimal(18, 2)) as revenue,
        cast(sum(unpriced_units) as bigint) as unpriced_units,
        bool_or(has_unpriced_lines) as has_unpriced_lines
    from order_totals
    group by all

)

select * from final
