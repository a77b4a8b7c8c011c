-- Every observed version of every order, in time order: the status history stuck alerts rely on.
-- GRAIN: one row per amazon_order_id and observed version (last_update_date, dt).
-- RULES: a version is valid from its last_update_date until the next version's (valid_to is null for the
-- current one). previous_status is the status of the version before; is_status_change marks versions whose
-- status differs from it (the first version always counts as a change). status_since is when the order
-- entered the status it has in that version (the start of the run of equal statuses).
with

source as (

    select * from {{ source('raw', 'orders') }}

),

versions as (

    select
        amazon_order_id,
        trim(order_status) as order_status,
        last_update_date,
        dt,
        row_number() over (
            partition by amazon_order_id order by last_update_date, dt
        ) as version_number
    from source

),

with_neighbours as (

    select
        *,
        lag(order_status) over by_time as previous_status,
        lead(last_update_date) over by_time as valid_to
    from versions
    window by_time as (partition by amazon_order_id order by version_number)

),

with_runs as (

    select
        *,
        previous_status is distinct from order_status as is_status_change,
        sum(case when previous_status is distinct from order_status then 1 else 0 end) over (
            partition by amazon_order_id order by version_number
        ) as status_run
    from with_neighbours

),

final as (

    select
        amazon_order_id,
        version_number,
        order_status,
        previous_status,
        is_status_change,
        last_update_date as valid_from,
        valid_to,
        min(last_update_date) over (partition by amazon_order_id, status_run) as status_since,
        valid_to is null as is_current,
        dt
    from with_runs

)

select * from final
