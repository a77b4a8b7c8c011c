-- Every observed version of every order, in time order: the status history stuck alerts rely on.
-- GRAIN: one row per account, amazon_order_id and observed version (last_update_date, dt).
-- ACCOUNT: an order's versions are those of its seller account only ('default' for data without accounts).
-- RULES: versions are ordered by last_update_date, then dt; a quarantined (null) last_update_date is the oldest
-- (as in stg_orders). A version is valid from its last_update_date until the next version's (valid_to is null
-- for the current one, is_current, the last version). previous_status is the status of the version before;
-- is_status_change marks versions whose status differs from it (the first version always counts as a change),
-- so an order entered its current status at the last version with a change.
-- INCREMENTAL: an order's history depends on that order's versions only, so a run recomputes just the orders
-- with versions in changed partitions and keeps the rest (an id two accounts share, in both).
{{ config(materialized='incremental', unique_key='amazon_order_id', publish=false) }}
with

source as (

    select account, amazon_order_id, trim(order_status) as order_status, last_update_date, dt
    from {{ source('raw', 'orders') }}

),

versions as (

    select
        account,
        amazon_order_id,
        row_number() over by_time as version_number,
        order_status,
        lag(order_status) over by_time as previous_status,
        last_update_date as valid_from,
        lead(last_update_date) over by_time as valid_to,
        lead(dt) over by_time is null as is_current,
        dt
    from source
    window by_time as (partition by account, amazon_order_id order by last_update_date nulls first, dt)

),

final as (

    select
        account,
        amazon_order_id,
        version_number,
        order_status,
        previous_status,
        previous_status is distinct from order_status as is_status_change,
        valid_from,
        valid_to,
        is_current,
        dt
    from versions

)

select * from final
