-- Daily sales per sales channel (Amazon.com, Amazon.ca, Non-Amazon ...) and fulfillment channel (AFN, MFN).
-- GRAIN: one row per account, purchase_day (UTC), purchase_day_local, marketplace_timezone, sales_channel,
-- fulfillment_channel and currency.
-- ACCOUNT: the seller account ('default' for data without accounts); accounts are never added together.
-- DAYS: as in sku_daily_sales: purchase_day is the UTC day, purchase_day_local the day in marketplace_timezone
-- (Seller Central's); sum over either day.
-- RULES: the same as sku_daily_sales: current version of each order, counted once on its purchase day; every
-- status except Canceled is a sale; Pending lines count in units_ordered and unpriced_units but not in
-- revenue. orders counts distinct orders with at least one line. Currencies are never added: a day with USD
-- and CAD sales has one row per currency. revenue per (account, purchase_day, currency) equals sku_daily_sales',
-- and so does revenue per (account, purchase_day_local, marketplace_timezone, currency).
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
        sales_channel,
        fulfillment_channel,
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
        sales_channel,
        fulfillment_channel,
        currency,
        amazon_order_id,
        sum(quantity_ordered) as units_ordered,
        sum(quantity_shipped) as units_shipped,
        sum(item_price_amount) as revenue,
        sum(case when is_unpriced then quantity_ordered else 0 end) as unpriced_units
    from order_lines
    group by all

),

final as (

    select
        account,
        purchase_day,
        purchase_day_local,
        marketplace_timezone,
        sales_channel,
        fulfillment_channel,
        currency,
        count(*) as orders,
        cast(sum(units_ordered) as bigint) as units_ordered,
        cast(sum(units_shipped) as bigint) as units_shipped,
        cast(coalesce(sum(revenue), 0) as decimal(18, 2)) as revenue,
        cast(sum(unpriced_units) as bigint) as unpriced_units
    from order_totals
    group by all

)

select * from final
