-- The current state of every order.
-- GRAIN: one row per amazon_order_id.
-- RULES: raw orders are a change feed (one row per observed version, partitioned by the UTC day of
-- last_update_date). The current version is the row with the greatest last_update_date over all partitions;
-- ties go to the latest dt partition, then to the row not quarantined. Text is trimmed (Amazon sends values
-- like 'Standard '), purchase_day is the UTC date of purchase_date, dt is the partition the version came from.
with

source as (

    select * from {{ source('raw', 'orders') }}

),

versions as (

    select
        *,
        count(*) over (partition by amazon_order_id) as version_count
    from source
    qualify row_number() over (
        partition by amazon_order_id
        order by last_update_date desc nulls last, dt desc, is_quarantined asc
    ) = 1

),

final as (

    select

        ----------  ids
        amazon_order_id,
        nullif(trim(seller_order_id), '') as seller_order_id,
        marketplace_id,

        ----------  status and channels
        trim(order_status) as order_status,
        trim(fulfillment_channel) as fulfillment_channel,
        trim(sales_channel) as sales_channel,
        trim(order_channel) as order_channel,
        trim(order_type) as order_type,
        trim(ship_service_level) as ship_service_level,
        trim(shipment_service_level_category) as shipment_service_level_category,

        ----------  money and counts
        order_total_amount,
        order_total_currency_code,
        number_of_items_shipped,
        number_of_items_unshipped,

        ----------  flags
        coalesce(is_business_order, false) as is_business_order,
        coalesce(is_prime, false) as is_prime,
        coalesce(is_replacement_order, false) as is_replacement_order,
        is_quarantined,
        quarantined_fields,

        ----------  geography
        shipping_address_country_code,
        shipping_address_state_or_region,

        ----------  timestamps
        purchase_date,
        cast(purchase_date as date) as purchase_day,
        last_update_date,
        earliest_ship_date,
        latest_ship_date,
        earliest_delivery_date,
        latest_delivery_date,

        ----------  lineage
        dt,
        version_count

    from versions

)

select * from final
