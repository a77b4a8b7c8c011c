-- Orders whose current status has lasted too long, as of the latest data.
-- GRAIN: one row per account and stuck amazon_order_id.
-- ACCOUNT: the seller account ('default' for data without accounts); each account is judged on its own data.
-- RULES: as_of is the greatest last_update_date in the account's raw orders (not the wall clock), so results are
-- reproducible and one account's late data never ages another's orders. status_since is when the order entered
-- its current status (stg_order_status_history: a later version with the same status does not reset it; when it
-- entered it at a quarantined version, whose last_update_date is unknown and counts as the oldest, the status
-- counts from its first readable version);
-- hours_in_status = as_of - status_since. An order is stuck when any rule holds, and reason lists them:
--   * Pending for more than var stuck_pending_hours (default 24) hours;
--   * Unshipped or PartiallyShipped and as_of is past latest_ship_date;
--   * a non-terminal status (Pending, Unshipped, PartiallyShipped, PendingAvailability) unchanged for more
--     than var stuck_after_days (default 7) days.
-- Shipped, Canceled and Unfulfillable are terminal and never stuck. units_unshipped = ordered - shipped units.
with

orders as (

    select * from {{ ref('stg_orders') }}

),

status_history as (

    select * from {{ ref('stg_order_status_history') }}

),

order_items as (

    select * from {{ ref('stg_order_items') }}

),

open_orders as (

    -- only a non-terminal status can be stuck (every rule below needs one), so the rest is left out early
    select * from orders
    where order_status in ('Pending', 'Unshipped', 'PartiallyShipped', 'PendingAvailability')

),

as_of as (

    select account, max(valid_from) as as_of
    from status_history
    group by account

),

open_versions as (

    -- the versions of the open orders only; is_status_change as stg_order_status_history defines it, computed
    -- on these few orders instead of every version of every order
    select
        status_history.account,
        status_history.amazon_order_id,
        status_history.valid_from,
        status_history.order_status is distinct from lag(status_history.order_status) over (
            partition by status_history.account, status_history.amazon_order_id
            order by status_history.valid_from nulls first, status_history.dt
        ) as is_status_change
    from status_history
    semi join open_orders
        on status_history.account = open_orders.account
        and status_history.amazon_order_id = open_orders.amazon_order_id

),

current_status as (

    -- the current status began at the order's last version that changed status; when that is a quarantined
    -- version (null valid_from, so among the oldest), every readable version has the status: the first of them
    select
        account,
        amazon_order_id,
        coalesce(max(valid_from) filter (where is_status_change), min(valid_from)) as status_since
    from open_versions
    group by account, amazon_order_id

),

order_units as (

    select
        order_items.account,
        order_items.amazon_order_id,
        cast(sum(order_items.quantity_ordered) as bigint) as units_ordered,
        cast(sum(order_items.quantity_ordered - order_items.quantity_shipped) as bigint) as units_unshipped
    from order_items
    semi join open_orders
        on order_items.account = open_orders.account
        and order_items.amazon_order_id = open_orders.amazon_order_id
    group by order_items.account, order_items.amazon_order_id

),

aged as (

    select
        open_orders.*,
        current_status.status_since,
        as_of.as_of,
        round(date_diff('second', current_status.status_since, as_of.as_of) / 3600.0, 2) as hours_in_status
    from open_orders
    inner join current_status
        on open_orders.account = current_status.account
        and open_orders.amazon_order_id = current_status.amazon_order_id
    inner join as_of on open_orders.account = as_of.account

),

flagged as (

    select
        *,
        order_status = 'Pending'
            and hours_in_status > {{ var('stuck_pending_hours', 24) }} as is_pending_too_long,
        order_status in ('Unshipped', 'PartiallyShipped')
            and as_of > latest_ship_date as is_past_latest_ship_date,
        order_status in ('Pending', 'Unshipped', 'PartiallyShipped', 'PendingAvailability')
            and hours_in_status > 24 * {{ var('stuck_after_days', 7) }} as is_unchanged_too_long
    from aged

),

final as (

    select
        flagged.account,
        flagged.amazon_order_id,
        flagged.order_status,
        flagged.status_since,
        flagged.hours_in_status,
        flagged.as_of,
        concat_ws('; ',
            case when is_pending_too_long
                then 'Pending for more than {{ var("stuck_pending_hours", 24) }} h' end,
            case when is_past_latest_ship_date then 'not shipped by latest_ship_date' end,
            case when is_unchanged_too_long
                then 'status unchanged for more than {{ var("stuck_after_days", 7) }} days' end
        ) as reason,
        flagged.is_pending_too_long,
        flagged.is_past_latest_ship_date,
        flagged.is_unchanged_too_long,
        flagged.purchase_date,
        flagged.last_update_date,
        flagged.latest_ship_date,
        flagged.marketplace_id,
        flagged.sales_channel,
        flagged.fulfillment_channel,
        coalesce(order_units.units_ordered, 0) as units_ordered,
        coalesce(order_units.units_unshipped, 0) as units_unshipped
    from flagged
    left join order_units
        on flagged.account = order_units.account
        and flagged.amazon_order_id = order_units.amazon_order_id
    where is_pending_too_long or is_past_latest_ship_date or is_unchanged_too_long

)

select * from final
