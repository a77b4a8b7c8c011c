-- The current state of every order of every seller account.
-- GRAIN: one row per account and amazon_order_id.
-- ACCOUNT: the seller account the raw partition belongs to ('default' for data without accounts); an order's
-- versions are the rows of its account only, so two accounts holding the same order id never mix.
-- RULES: raw orders are a change feed (one row per observed version, partitioned by the UTC day of
-- last_update_date). The current version is the row with the greatest last_update_date over all partitions;
-- a tie goes to the latest dt partition (within a partition each version appears once): the version
-- stg_order_status_history marks is_current (its version_number counts the versions). A quarantined (null)
-- last_update_date is the oldest version, as when raw partitions are written, so a bad row never hides a
-- readable later one. Text is trimmed (Amazon sends values like 'Standard ') and dt is the partition the
-- current version came from.
-- DAYS: purchase_day is the UTC date of purchase_date. purchase_day_local is its date in marketplace_timezone,
-- the time zone Seller Central reports the order's marketplace in (marketplace_timezones below, the one list of
-- them); a marketplace not listed falls back to 'UTC' and is_timezone_fallback says so.
-- INCREMENTAL: an order's row depends on that order's versions only, so a run recomputes just the orders in
-- changed partitions (and those whose current version came from one) and keeps the rest; the key is the order id,
-- so an id two accounts share is recomputed in both.
{{ config(materialized='incremental', unique_key='amazon_order_id', publish=false) }}
with

source as (

    select
        account, amazon_order_id, seller_order_id, marketplace_id, order_status, fulfillment_channel, sales_channel,
        order_channel, order_type, ship_service_level, shipment_service_level_category,
        order_total_amount, order_total_currency_code, number_of_items_shipped, number_of_items_unshipped,
        is_business_order, is_prime, is_replacement_order, is_quarantined, quarantined_fields,
        shipping_address_country_code, shipping_address_state_or_region,
        purchase_date, last_update_date, earliest_ship_date, latest_ship_date, earliest_delivery_date,
        latest_delivery_date, dt,
        -- (last_update_date, dt) as one number that sorts like the pair, nulls first as in the history's window:
        -- microseconds since 1970 x 10^7 + days since 0001-01-01 (under 10^7 for any date)
        coalesce(epoch_us(last_update_date), -9223372036854775808)::hugeint * 10000000
            + (dt - date '0001-01-01') as version_key
    from {{ source('raw', 'orders') }}

),

latest_versions as (

    -- an aggregate, not a window over the versions
    select account, amazon_order_id, max(version_key) as version_key
    from source
    group by account, amazon_order_id

),

current_versions as (

    select source.*
    from source
    inner join latest_versions
        on source.account = latest_versions.account
        and source.amazon_order_id = latest_versions.amazon_order_id
        and source.version_key = latest_versions.version_key

),

marketplace_timezones as (

    -- the time zone Seller Central reports each Amazon marketplace (MWS marketplace id) in
    select *
    from (values
        -- US, CA and MX in Pacific time; BR
        ('ATVPDKIKX0DER', 'America/Los_Angeles'), ('A2EUQ1WTGCTBG2', 'America/Los_Angeles'),
        ('A1AM78C64UM0Y8', 'America/Los_Angeles'), ('A2Q3Y263D00KWC', 'America/Sao_Paulo'),
        -- UK, DE, FR, IT, ES, NL, SE, PL, BE, TR
        ('A1F83G8C2ARO7P', 'Europe/London'), ('A1PA6795UKMFR9', 'Europe/Berlin'), ('A13V1IB3VIYZZH', 'Europe/Paris'),
        ('APJ6JRA9NG5V4', 'Europe/Rome'), ('A1RKKUPIHCS9HS', 'Europe/Madrid'), ('A1805IZSGTT6HS', 'Europe/Amsterdam'),
        ('A2NODRKZP88ZB9', 'Europe/Stockholm'), ('A1C3SOZRARQ6R3', 'Europe/Warsaw'),
        ('AMEN7PMS3EDWL', 'Europe/Brussels'), ('A33AVAJ2PDY3EV', 'Europe/Istanbul'),
        -- EG, AE, SA, IN, JP, AU, SG, CN
        ('ARBP9OOSHTCHU', 'Africa/Cairo'), ('A2VIGQ35RCS4UG', 'Asia/Dubai'), ('A17E79C6D8DWNP', 'Asia/Riyadh'),
        ('A21TJRUUN4KGV', 'Asia/Kolkata'), ('A1VC38T7YXB528', 'Asia/Tokyo'), ('A39IBJ37TRP1C6', 'Australia/Sydney'),
        ('A19VAU5U5O7RUS', 'Asia/Singapore'), ('AAHKV2X7AFYLW', 'Asia/Shanghai')
    ) as marketplaces (marketplace_id, time_zone)

),

current_orders as (

    select
        current_versions.*,
        coalesce(marketplace_timezones.time_zone, 'UTC') as marketplace_timezone,
        marketplace_timezones.time_zone is null as is_timezone_fallback
    from current_versions
    left join marketplace_timezones
        on current_versions.marketplace_id = marketplace_timezones.marketplace_id

),

final as (

    select

        ----------  ids
        account,
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
        cast(timezone('UTC', purchase_date) as date) as purchase_day,
        cast(timezone(marketplace_timezone, purchase_date) as date) as purchase_day_local,
        marketplace_timezone,
        is_timezone_fallback,
        last_update_date,
        earliest_ship_date,
        latest_ship_date,
        earliest_delivery_date,
        latest_delivery_date,

        ----------  lineage
        dt

    from current_orders

)

select * from final
