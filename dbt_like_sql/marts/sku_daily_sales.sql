-- Daily sales per SKU, per marketplace, sales channel, fulfillment channel and currency.
-- GRAIN: one row per purchase_day (UTC), marketplace_id, sales_channel, fulfillment_channel, seller_sku, asin
-- and currency.
-- RULES: each order counts once, in its current version (stg_orders / stg_order_items), on the UTC day it was
-- purchased. Every status except Canceled is a sale (Pending, Unshipped, PartiallyShipped, Shipped,
-- Unfulfillable, PendingAvailability). Pending lines have no price yet: their units are in units_ordered and
-- in unpriced_units, they add nothing to revenue, and has_unpriced_lines flags the row. revenue is the sum of
-- item_price_amount (line totals, before tax and promotions) in the row's currency; currencies are never added.
with

order_items as (

    select * from {{ ref('stg_order_items') }}

),

order_lines as (

    select
        purchase_day,
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

final as (

    select
        purchase_day,
        marketplace_id,
        sales_channel,
        fulfillment_channel,
        seller_sku,
        asin,
        currency,
        count(distinct amazon_order_id) as orders,
        cast(sum(quantity_ordered) as bigint) as units_ordered,
        cast(sum(quantity_shipped) as bigint) as units_shipped,
        cast(coalesce(sum(item_price_amount), 0) as decimal(18, 2)) as revenue,
        cast(sum(case when is_unpriced then quantity_ordered else 0 end) as bigint) as unpriced_units,
        bool_or(is_unpriced) as has_unpriced_lines
    from order_lines
    group by all

)

select * from final
