-- The items of the current version of every order, with the order attributes marts group by.
-- GRAIN: one row per amazon_order_id and order_item_id.
-- RULES: items in order_items/dt=D belong to the order version in orders/dt=D, so the current items are the
-- ones in the same dt partition as the current order row of stg_orders. Older versions' items are dropped,
-- so an order seen in several partitions is counted once. item_price_amount is the line total
-- (unit price x quantity) and is null while an order is Pending (is_unpriced). currency_code is the item
-- price currency, else the order total currency, else the currency the marketplace's priced lines use, so
-- an unpriced Pending line still belongs to one currency. Quantities are integers, money decimal.
-- order_status, purchase_day, marketplace_id, sales_channel and fulfillment_channel are the current order's.
{{ config(materialized='view') }}
with

source as (

    select
        amazon_order_id, order_item_id, seller_sku, asin, title, quantity_ordered, quantity_shipped,
        item_price_amount, item_price_currency_code, item_tax_amount, shipping_price_amount,
        promotion_discount_amount, order_last_update_date, is_quarantined, dt
    from {{ source('raw', 'order_items') }}

),

orders as (

    select
        amazon_order_id, dt, order_status, purchase_day, marketplace_id, sales_channel, fulfillment_channel,
        order_total_currency_code
    from {{ ref('stg_orders') }}

),

current_items as (

    select source.*, orders.* exclude (amazon_order_id, dt)
    from source
    inner join orders
        on source.amazon_order_id = orders.amazon_order_id
        and source.dt = orders.dt

),

marketplace_currencies as (

    -- the currency each marketplace prices in, learned from its priced lines
    select marketplace_id, mode(item_price_currency_code) as marketplace_currency_code
    from current_items
    where item_price_currency_code is not null
    group by marketplace_id

),

final as (

    select

        ----------  ids
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
        current_items.marketplace_id,
        sales_channel,
        fulfillment_channel,

        ----------  lineage
        order_last_update_date,
        dt

    from current_items
    left join marketplace_currencies
        on current_items.marketplace_id is not distinct from marketplace_currencies.marketplace_id

)

select * from final
