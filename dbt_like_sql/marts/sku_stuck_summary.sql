-- SKUs held up by stuck orders.
-- GRAIN: one row per account, seller_sku and asin with at least one stuck order line.
-- ACCOUNT: the seller account ('default' for data without accounts); accounts are never added together.
-- RULES: built on stuck_orders (see its rules) and the current items of those orders. stuck_orders counts
-- distinct stuck orders, stuck_units the units not shipped yet (ordered - shipped) on their lines,
-- oldest_age_hours the longest hours_in_status among them; statuses lists their current statuses.
with

stuck_orders as (

    select * from {{ ref('stuck_orders') }}

),

order_items as (

    select * from {{ ref('stg_order_items') }}

),

final as (

    select
        order_items.account,
        order_items.seller_sku,
        order_items.asin,
        count(distinct stuck_orders.amazon_order_id) as stuck_orders,
        cast(sum(order_items.quantity_ordered - order_items.quantity_shipped) as bigint) as stuck_units,
        max(stuck_orders.hours_in_status) as oldest_age_hours,
        string_agg(distinct stuck_orders.order_status, ', ' order by stuck_orders.order_status) as statuses
    from stuck_orders
    inner join order_items
        on stuck_orders.account = order_items.account
        and stuck_orders.amazon_order_id = order_items.amazon_order_id
    group by all

)

select * from final
