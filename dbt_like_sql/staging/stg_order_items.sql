-- The items of the current version of every order, with the order attributes marts group by.
-- GRAIN: one row per account, amazon_order_id and order_item_id.
-- ACCOUNT: an order's items are those of its seller account only ('default' for data without accounts).
-- RULES: each item row names the order version it was fetched with (order_last_update_date, in the same dt
-- partition as that version), so the current items are the ones of the current order row of stg_orders. Older
-- versions' items are dropped, so an order seen in several versions is counted once. item_price_amount is the line total
-- (unit price x quantity) and is null while an order is Pending (is_unpriced). currency_code is the item
-- price currency, else the order total currency, else the currency Amazon prices that marketplace in, so an
-- unpriced Pending line still belongs to one currency (null for a marketplace not listed below).
-- Quantities are integers, money decimal. order_status, purchase_day (UTC), purchase_day_local (in
-- marketplace_timezone), marketplace_id, sales_channel and fulfillment_channel are the current order's.
-- INCREMENTAL: an order's items depend on that order only, so a run recomputes just the orders whose
-- current version or items changed and keeps the rest (an id two accounts share, in both).
{{ config(materialized='incremental', unique_key='amazon_order_id', publish=false) }}
with

source as (

    select
        account, amazon_order_id, order_item_id, seller_sku, asin, title, quantity_ordered, quantity_shipped,
        item_price_amount, item_price_currency_code, item_tax_amount, shipping_price_amount,
        promotion_discount_amount, order_last_update_date, is_quarantined, dt
    from {{ source('raw', 'order_items') }}

),

orders as (

    select
        account, amazon_order_id, dt, last_update_date, order_status, purchase_day, purchase_day_local,
        marketplace_timezone, marketplace_id, sales_channel, fulfillment_channel, order_total_currency_code
    from {{ ref('stg_orders') }}

),

current_items as (

    select source.*, orders.* exclude (account, amazon_order_id, dt, last_update_date)
    from source
    inner join orders
        on source.account = orders.account
        and source.amazon_order_id = orders.amazon_order_id
        and source.dt = orders.dt
        and source.order_last_update_date is not distinct from orders.last_update_date

),

marketplace_currencies as (

    -- the currency of each Amazon marketplace (MWS marketplace ids)
    select *
    from (values
        ('ATVPDKIKX0DER', 'USD'), ('A2EUQ1WTGCTBG2', 'CAD'), ('A1AM78C64UM0Y8', 'MXN'), ('A2Q3Y263D00KWC', 'BRL'),
        ('A1F83G8C2ARO7P', 'GBP'), ('A1PA6795UKMFR9', 'EUR'), ('A13V1IB3VIYZZH', 'EUR'), ('APJ6JRA9NG5V4', 'EUR'),
        ('A1RKKUPIHCS9HS', 'EUR'), ('A1805IZSGTT6HS', 'EUR'), ('A2NODRKZP88ZB9', 'SEK'), ('A1C3SOZRARQ6R3', 'PLN'),
        ('A33AVAJ2PDY3EV', 'TRY'), ('A2VIGQ35RCS4UG', 'AED'), ('A17E79C6D8DWNP', 'SAR'), ('A21TJRUUN4KGV', 'INR'),
        ('A1VC38T7YXB528', 'JPY'), ('A39IBJ37TRP1C6', 'AUD'), ('A19VAU5U5O7RUS', 'SGD'), ('AAHKV2X7AFYLW', 'CNY')
    ) as marketplaces (marketplace_id, marketplace_currency_code)

),

final as (

    select

        ----------  ids
        account,
        amazon_order_id,
        order_item_id,
        trim(seller_sku) as seller_sku,
        trim(asin) as asin,
        title,

        ----------  quantities
        quantity_ordered,
        coalesce(quantity_shipped, 0) as quantity_shipped,

        ----------  money
        item_price_amount,
        item_price_currency_code,
        item_tax_amount,
        shipping_price_amount,
        promotion_discount_amount,
        coalesce(
            item_price_currency_code, order_total_currency_code, marketplace_currency_code
        ) as currency_code,

        ----------  flags
        item_price_amount is null as is_unpriced,
        is_quarantined,

        ----------  the current order
        order_status,
        purchase_day,
        purchase_day_local,
        marketplace_timezone,
        current_items.marketplace_id,
        sales_channel,
        fulfillment_channel,

        ----------  lineage
        order_last_update_date,
        dt

    from current_items
    left join marketplace_currencies
        on current_items.marketplace_id = marketplace_currencies.marketplace_id

)

select * from final
